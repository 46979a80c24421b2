"""The bot answers Traditional Chinese in Traditional without building OpenCC's Simplified→Traditional converter
(~43 MB that a process never gives back): its fixed texts are converted once, in a child process, and cached on
disk beside the model. Each check runs in a fresh interpreter, so what it reports about converters is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import opencc
import pytest

from bot.assistant.script import cache_file_for, fixed_texts
from nlu.chinese import HAN
from nlu.rasa_format import load_responses

ROOT = Path(__file__).resolve().parents[2]
RESPONSES = ROOT / "config" / "responses.yml"

PREPARE = """
import json, sys
from pathlib import Path
from bot.assistant.script import fixed_texts, in_script, prepare
from nlu.chinese import converters_built
from nlu.rasa_format import load_responses
responses = load_responses(sys.argv[1])
converted = prepare(responses, Path(sys.argv[2]))
texts = sorted(set(fixed_texts(responses)))
answers = {t: in_script(t, "zh-Hant") for t in texts}
print(json.dumps({"converted": converted, "answers": answers, "built": converters_built()}))
"""

ANSWER = """
import json, sys
from bot.app import load_default_responder
from bot.settings import Settings
from nlu.chinese import converters_built
settings = Settings(nlu={"model_path": sys.argv[1]})
responder = load_default_responder(settings)
turn = responder.respond("運費多少")
print(json.dumps({"answer": turn.answer, "intent": turn.intent, "script": turn.script, "built": converters_built()}))
"""


def run_fresh(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@cache
def _s2tw() -> opencc.OpenCC:
    return opencc.OpenCC("s2tw.json")


def traditional(text: str) -> str:
    return _s2tw().convert(text)


def test_fixed_texts_are_converted_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "nlu-model.zh-Hant.json"
    first = run_fresh(PREPARE, str(RESPONSES), str(cache))
    chinese = [t for t in set(fixed_texts(load_responses(RESPONSES))) if HAN.search(t)]
    assert first["converted"] == len(chinese) > 20
    assert first["built"] == [], "converted in a child process, not in this one"
    assert first["answers"] == {t: traditional(t) for t in first["answers"]}
    assert any(first["answers"][t] != t for t in chinese)
    assert cache.exists()

    again = run_fresh(PREPARE, str(RESPONSES), str(cache))
    assert again["converted"] == 0 and again["answers"] == first["answers"] and again["built"] == []


@pytest.mark.parametrize("damage", ["{not json", '{"stamp": {"config": "s2t.json"}, "texts": {"订单": "X"}}', "[]"])
def test_a_damaged_or_foreign_cache_is_rebuilt_not_trusted(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "model.zh-Hant.json"
    cache.write_text(damage, encoding="utf-8")
    result = run_fresh(PREPARE, str(RESPONSES), str(cache))
    assert result["converted"] > 20 and result["built"] == []
    assert result["answers"] == {t: traditional(t) for t in result["answers"]}
    assert json.loads(cache.read_text(encoding="utf-8"))["stamp"]["config"] == "s2tw.json"


def test_text_that_was_not_prepared_is_still_converted(tmp_path: Path) -> None:
    code = (
        "import json; from nlu.chinese import to_traditional, converters_built; "
        "print(json.dumps([to_traditional('Apple Pay 123'), converters_built(), to_traditional('我的订单在哪里'), "
        "converters_built()]))"
    )
    plain, none_built, converted, built = run_fresh(code)
    assert plain == "Apple Pay 123" and none_built == [], "text without Han characters needs no converter"
    assert converted == "我的訂單在哪裡" and built == ["s2tw.json"]


def test_the_bot_answers_traditional_without_the_converter(tmp_path: Path) -> None:
    model = tmp_path / "nlu-model.joblib"
    result = run_fresh(ANSWER, str(model))
    zh = load_responses(RESPONSES).answer(result["intent"], "zh")
    assert result["script"] == "zh-Hant" and result["answer"] == traditional(zh) != zh
    assert result["built"] == ["t2s.json"], "only the small Traditional→Simplified converter, for the question"
    assert cache_file_for(model).exists()
