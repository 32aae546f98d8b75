"""Property-based requests generated from our OpenAPI document (schemathesis + hypothesis).

For the identity half of the API (auth, API keys, domains, campaigns), any generated request must
answer a documented status, with the documented content type and body schema, and never a 500.
Requests are made as a manager of a fresh domain. Schema-valid requests may still be refused
(a domain name not matching the email is a business rule no schema states), so schemathesis's
"valid data is accepted" check is not applied.

Operations are walked inside one test (not with `schemathesis.pytest.from_fixture`, whose lazy
loader does not run under pytest 9): the app needs this test's database, which only fixtures give.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import MakeUser

TAGS = ["auth", "api keys", "domains", "campaigns"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 10


def test_identity_endpoints_honour_their_schema(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api_client.app)
    results = list(schema.include(tag=TAGS).get_all_operations())
    operations: list[APIOperation[Any, Any, Any, Any]] = [
        r.ok() for r in results if isinstance(r, Ok)
    ]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def honours_schema(case: Case[APIOperation[Any, Any, Any, Any]]) -> None:
            case.call_and_validate(headers=user.headers, checks=CHECKS)

        honours_schema()
