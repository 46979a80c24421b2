"""The REST API under schemathesis, counted: at least 10,000 generated requests (valid and invalid, spread over
every operation) against the real app served by uvicorn on SQLite (tests/web/test_api_fuzz.py runs fewer on both
databases). None may get a 5xx; every answer matches the schema; every refusal is a 4xx with a body."""

from __future__ import annotations

import os
import time
from collections import Counter

import requests
from hypothesis import given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.fuzz.nasty import BATCH, FUZZ_EXAMPLES, batches, fuzz_settings
from tests.web.test_api_fuzz import Server, schema

OPERATIONS = [result.ok() for result in schema.get_all_operations()]
PER_OPERATION = int(os.environ.get("TIERDESK_API_FUZZ_PER_OPERATION", "") or -(-FUZZ_EXAMPLES // len(OPERATIONS)))


def test_ten_thousand_generated_requests_get_no_server_error(tmp_path):
    server = Server(f"sqlite+aiosqlite:///{tmp_path / 'api.db'}", None).start()
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
