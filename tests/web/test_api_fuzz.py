"""Schemathesis over the whole JSON API (every operation in /api/openapi.json), against
Lens served over real HTTP on a fresh database: no request it makes up may get a 5xx.
Also run in CI (`make test`), a few examples per operation to keep the suite short."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fixtures.browser import LiveServer, serve_lens


@pytest.fixture(scope="module")
def api_server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory() as tmp, serve_lens(Path(tmp)) as server:
        yield server


EXAMPLES = 25  # per operation
# Not in `make test-lowest`: schemathesis needs a newer rich than Lens's floor.
pytestmark = pytest.mark.fuzz


def test_no_request_gets_a_server_error(api_server: LiveServer) -> None:
    import schemathesis

    base = api_server.url("").rstrip("/")
    schema = schemathesis.openapi.from_url(api_server.url("/api/openapi.json"))
    # Writes come from this site, as a browser's would (else the CSRF check answers 403
    # before the code under test runs).
    headers = {"Origin": base}
    tried: dict[str, int] = {}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        _fuzz(operation, base, headers, tried, failures)
    assert len(operations) >= 10 and len(tried) == len(operations), sorted(tried)
    assert not failures, "\n".join(failures[:10])


def _fuzz(operation, base, headers, tried, failures) -> None:  # type: ignore[no-untyped-def]
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(base_url=base, headers=headers)
        tried[label] = tried.get(label, 0) + 1
        if response.status_code >= 500:
            failures.append(
                f"{label}: {response.status_code} for {case.as_curl_command()}"
                f"\n  {response.text[:300]}"
            )

    run()
