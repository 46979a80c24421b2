"""The REST API under schemathesis, counted: at least 10,000 generated requests (valid and invalid, spread over
every operation) against the real app served by uvicorn on SQLite (tests/web/test_api_fuzz.py runs fewer on both
databases). None may get a 5xx; every answer matches the schema; every refusal is a 4xx with a body."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass

import requests
from hypothesis import given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.fuzz.nasty import BATCH, FUZZ_EXAMPLES, batches, fuzz_settings
from tests.web.test_api_fuzz import Server, schema

OPERATIONS = [result.ok() for result in schema.get_all_operations()]
PER_OPERATION = int(os.environ.get("TIERDESK_API_FUZZ_PER_OPERATION", "") or -(-FUZZ_EXAMPLES // len(OPERATIONS)))


def _serve(url: str, started, stop) -> None:
    """The app in a process of its own: the generator and the server then each have a core (one process's lock
    held both, and this test was the suite's longest)."""
    try:
        server = Server(url, None).start()
    except BaseException as exc:
        started.put(("error", repr(exc)))
        return
    started.put((server.base_url, server.token))
    stop.wait()
    server.stop()


@dataclass
class Child:
    base_url: str
    token: str
    process: multiprocessing.Process
    stop_event: object

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


def serve_in_child(url: str) -> Child:
    ctx = multiprocessing.get_context("spawn")
    started, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_serve, args=(url, started, stop), daemon=True)
    process.start()
    base_url, token = started.get(timeout=120)
    assert base_url != "error", token
    return Child(base_url, token, process, stop)


def test_ten_thousand_generated_requests_get_no_server_error(tmp_path):
    server = serve_in_child(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    try:
        with requests.Session() as session:
            headers = {"Authorization": f"Bearer {server.token}"}
            for operation in OPERATIONS:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    @fuzz_settings(-(-PER_OPERATION // (2 * BATCH)))  # half valid, half invalid requests
                    @given(batches(operation.as_strategy(generation_mode=mode)))
                    def call(cases):
                        for case in cases:
                            response = case.call_and_validate(
                                base_url=server.base_url, session=session, headers=headers,
                                checks=[not_a_server_error, response_schema_conformance, status_code_conformance])
                            statuses[response.status_code] += 1
                            if response.status_code >= 400:
                                assert response.status_code < 500 and response.content, response.status_code

                    call()
    finally:
        server.stop()
    total = sum(statuses.values())
    print(f"REST API: {total} generated requests over {len(OPERATIONS)} operations in "
          f"{time.monotonic() - started:.0f}s: {dict(sorted(statuses.items()))}")
    assert total >= min(FUZZ_EXAMPLES, PER_OPERATION * len(OPERATIONS)), total
    assert not any(code >= 500 for code in statuses)
    assert statuses[200] + statuses[201] >= 500 and statuses[422] >= 1000  # both the work and the refusals
