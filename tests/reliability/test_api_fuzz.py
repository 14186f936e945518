"""Schemathesis over the OpenAPI schema: no request, valid or not, gets a 5xx answer.

Every operation of ``/openapi.json`` is called with generated parameters and bodies (both
conforming and non-conforming ones), once with an admin key (passes every role check, so
the handlers themselves are reached) and once with a clerk key of the office, against the
real services of the ``settings`` fixture with an office signing key, a trust store and a
test identity provider configured (so that "not configured" 503s do not hide anything).
Bounded: ``SOHOA_FUZZ_EXAMPLES`` examples per operation (default 6) and a deadline per
operation, so the whole module stays around a minute.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from digitizer.api.app import create_app
from digitizer.config import Settings
from fixtures.idp import TestIdentityProvider
from tests.digitizer.vault_env import OFFICE, env, key, vault_settings

__all__ = ["env", "vault_settings"]

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(300)]

EXAMPLES = int(os.environ.get("SOHOA_FUZZ_EXAMPLES", "6"))


@pytest.fixture
def api(vault_settings: Settings) -> tuple[Any, dict[str, str]]:
    """The schema loaded from the app (ASGI, in process) and the two keys."""
    TestIdentityProvider(vault_settings.embedded.home / "idp")  # JWKS where the app reads it
    app = create_app(vault_settings)
    keys = {
        "admin": key(vault_settings, "admin", OFFICE)[1],
        "clerk": key(vault_settings, "clerk", OFFICE)[1],
    }
    return schemathesis.openapi.from_asgi("/openapi.json", app), keys


def _fuzz(operation: Any, mode: GenerationMode, keys: dict[str, str]) -> tuple[int, list[str]]:
    """Run one operation's generated cases in one mode; (calls made, failures)."""
    failures: list[str] = []
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal calls
        for role, secret in keys.items():
            began = time.monotonic()
            response = case.call(headers={"X-API-Key": secret})
            calls += 1
            elapsed = time.monotonic() - began
            if response.status_code >= 500 or elapsed > 30:
                failures.append(
                    f"{role} {mode.value}: {case.method} {case.formatted_path} "
                    f"-> {response.status_code} in {elapsed:.1f}s: {response.text[:300]}"
                )

    try:
        run()
    except Unsatisfiable:
        pass  # nothing in this operation can be made non-conforming
    except Exception as exc:  # schemathesis could not build a request: report it
        failures.append(f"{operation.label} {mode.value}: {type(exc).__name__}: {exc}")
    return calls, failures


def test_no_server_errors(api: tuple[Any, dict[str, str]]) -> None:
    """GIVEN every operation of the schema WHEN generated requests (conforming and not)
    are sent with an admin key and with a clerk key THEN none gets a 5xx answer."""
    schema, keys = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    calls, failures = 0, []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            made, failed = _fuzz(operation, mode, keys)
            calls += made
            failures += failed
    print(f"\n{calls} fuzzed calls over {len(operations)} operations")
    assert calls > len(operations) * EXAMPLES
    assert not failures, "\n".join(failures[:20])
