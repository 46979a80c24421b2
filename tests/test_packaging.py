"""An installed copy works like a checkout: the wheel carries its configuration, dependencies are declared
exactly, `tierdesk init` writes a deployment's copy that TIERDESK_CONFIG_DIR selects, and a broken setting
stops `tierdesk run` and shows in `tierdesk doctor` instead of quietly degrading."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "channels", "crm_store", "nlu", "config"}
# Declared for what they plug into, never imported by name: SQLAlchemy's drivers, zoneinfo's data, FastAPI's
# form parser, and the dev extras' tools.
USED_INDIRECTLY = {"aiosqlite", "asyncpg", "tzdata", "python-multipart", "uvicorn"}


# Run inside the installed copy: every requirement its metadata declares (outside extras) is there, at a
# version the requirement admits.
REQUIREMENTS_MET = """
import importlib.metadata as md
from packaging.requirements import Requirement
bad = []
reqs = [Requirement(r) for r in md.requires("tierdesk")]
for req in (r for r in reqs if not r.marker):
    try:
        if not req.specifier.contains(md.version(req.name), prereleases=True):
            bad.append(f"{req}: {md.version(req.name)}")
    except md.PackageNotFoundError:
        bad.append(f"{req}: missing")
print("ok" if not bad else bad, len(reqs))
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(deps: list[str]) -> set[str]:
    return {_norm(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]) for dep in deps}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _names(project["dependencies"]) | _extras()


def _extras() -> set[str]:
    """What the optional extras add (not the dev tools): imported only inside the functions that need them."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {name for extra, deps in extras.items() if extra != "dev" for name in _names(deps)}


def test_an_optional_extra_is_never_imported_when_a_module_loads() -> None:
    owners = md.packages_distributions()
    extras = _extras()
    assert extras, "the encoder extra is declared"
    eager = []
    for package in ("bot", "channels", "crm_store", "nlu"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    if {_norm(d) for d in owners.get(name.split(".")[0], [])} & extras:
                        eager.append(f"{path.relative_to(ROOT)}: {name}")
    assert not eager, f"an extra's module imported at module level (the bot must start without it): {eager}"


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for package in ("bot", "channels", "crm_store", "nlu"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in OURS and n != "__future__"}


def test_every_imported_library_is_declared_and_every_declared_one_is_used() -> None:
    declared = _declared()
    owners = md.packages_distributions()
    used: set[str] = set()
    undeclared = []
    for module in sorted(_imported_top_levels()):
        dists = {_norm(d) for d in owners.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        used |= dists
        if not dists & declared:
            undeclared.append(f"{module} (from {', '.join(sorted(dists))})")
    assert not undeclared, f"imported but not in pyproject dependencies: {undeclared}"
    unused = declared - used - {_norm(n) for n in USED_INDIRECTLY}
    assert not unused, (
        f"declared but never imported (add to USED_INDIRECTLY with the reason if that is right): {unused}"
    )


def _tierdesk(venv_bin: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    run_env["TIERDESK_NLU__MODEL_PATH"] = str(venv_bin.parent / "nlu-model.joblib")  # trained once per module
    run_env.update(env or {})
    return subprocess.run(
        [str(venv_bin / "tierdesk"), *args], cwd=cwd, env=run_env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree, installed in a fresh venv outside it; its bin folder.

    The fresh venv sees the test environment's libraries through a .pth line (so nothing is downloaded), but
    not its editable install of this project: a path added by a .pth file does not run that folder's own .pth
    hooks, so `import bot` can only find the installed wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".tierdesk", "build", "*.egg-info")
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((work / "dist").glob("tierdesk-*.whl"))
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    (site / "test_libraries.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env_dir / "bin"


def test_the_installed_wheel_runs_the_demo_with_its_own_configuration(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import bot, bot.defaults; print(bot.__file__); print(bot.defaults.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout, where.stdout
    checked = subprocess.run(
        [str(installed / "python"), "-c", REQUIREMENTS_MET], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0 and checked.stdout.startswith("ok"), checked.stdout + checked.stderr

    db = tmp_path / "demo.db"
    demo = _tierdesk(installed, "demo", "--db", str(db), cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Our support team works Monday to Friday" in demo.stdout  # the FAQ answered
    with sqlite3.connect(db) as conn:
        queues = dict(conn.execute("SELECT c.name, t.queue FROM tickets t JOIN customers c ON c.id = t.customer_id"))
    assert queues.get("Anna Petrova") == "vip", queues  # the VIP reached the VIP queue


def test_init_writes_a_copy_that_the_config_dir_setting_selects(installed: Path, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    made = _tierdesk(installed, "init", str(conf), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in conf.iterdir()) == ["nlu.yml", "responses.yml", "routing.toml", "tierdesk.toml"]
    again = _tierdesk(installed, "init", str(conf), cwd=tmp_path)
    assert again.returncode == 1 and "nothing written" in again.stdout

    answers = conf / "responses.yml"
    answers.write_text(answers.read_text().replace("Our support team works Monday to Friday", "We work weekdays"))
    demo = _tierdesk(
        installed, "demo", "--db", str(tmp_path / "d.db"), cwd=tmp_path, env={"TIERDESK_CONFIG_DIR": str(conf)}
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "We work weekdays" in demo.stdout and "Our support team works Monday" not in demo.stdout


def test_doctor_names_a_broken_setting_and_how_to_fix_it(installed: Path, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    good = _tierdesk(installed, "doctor", cwd=tmp_path, env={"TIERDESK_DATABASE_URL": db, "COLUMNS": "200"})
    assert good.returncode == 0, good.stdout
    assert "all checks passed" in good.stdout

    broken = _tierdesk(
        installed,
        "doctor",
        cwd=tmp_path,
        env={
            "TIERDESK_DATABASE_URL": db,
            "TIERDESK_ROUTING_POLICY": "missing.toml",
            "TIERDESK_REDIS_URL": "redis://127.0.0.1:1/0",
            "COLUMNS": "200",
        },
    )
    assert broken.returncode == 1
    assert "missing.toml not found" in broken.stdout and "TIERDESK_ROUTING_POLICY" in broken.stdout
    assert "✗ Redis: cannot reach it" in broken.stdout, broken.stdout
    assert "2 problem(s)" in broken.stdout

    typo = _tierdesk(installed, "doctor", cwd=tmp_path, env={"TIERDESK_WEB__PORT": "eighty"})
    assert typo.returncode == 1 and "TIERDESK_WEB__PORT" in typo.stdout

    stopped = _tierdesk(
        installed,
        "run",
        cwd=tmp_path,
        env={
            "TIERDESK_DATABASE_URL": db,
            "TIERDESK_ROUTING_POLICY": "missing.toml",
        },
    )
    assert stopped.returncode == 2 and "cannot start" in stopped.stdout and "missing.toml" in stopped.stdout
