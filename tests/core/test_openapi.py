"""The OpenAPI schema at /api/schema/: valid, complete and honest enough to generate a client from."""

import re

import pytest
from openapi_spec_validator import validate

from core.schema import ERROR_CODES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_schema_validates_against_the_openapi_specification(schema):
    validate(schema)  # raises OpenAPIValidationError with the path to the problem
    assert schema["openapi"].startswith("3.")


def test_every_operation_documents_its_success_body(schema):
    for name, operation in _operations(schema):
        successes = {
            status: body for status, body in operation["responses"].items() if status.startswith("2")
        }
        assert successes, name
        for status, body in successes.items():
            assert "content" in body, f"{name} {status} has no body"
            assert body["content"]["application/json"]["schema"], name
        assert operation.get("description"), f"{name} has no description"


def test_sign_in_operations_have_named_bodies(schema):
    def body_ref(path: str, part: str, status: str = "200") -> str:
        operation = schema["paths"][path]["post"]
        content = operation["requestBody"] if part == "request" else operation["responses"][status]
        return content["content"]["application/json"]["schema"].get("$ref", "")

    assert body_ref("/api/auth/token/", "request").endswith("/TokenObtainPairRequest")
    assert body_ref("/api/auth/token/", "response").endswith("/TokenPair")
    assert body_ref("/api/auth/token/refresh/", "request").endswith("/TokenRefreshRequest")
    assert body_ref("/api/auth/token/refresh/", "response").endswith("/TokenPair")
    assert body_ref("/api/auth/logout/", "request").endswith("/TokenBlacklistRequest")
    assert schema["paths"]["/api/auth/logout/"]["post"]["responses"]["200"]["content"]
    names = set(schema["components"]["schemas"])
    assert {"StsCredentials", "StsServerCredentials", "CredentialUrl", "TokenPair"} <= names
    assert not names & {"Output", "Input", "OutputRequest", "InputRequest"}


def test_error_responses_list_only_codes_of_their_status(schema):
    for name, operation in _operations(schema):
        for status, body in operation["responses"].items():
            if status.startswith("2"):
                continue
            properties = body["content"]["application/json"]["schema"]["properties"]
            codes = (properties.get("code") or properties["ErrorCode"])["enum"]
            assert codes, f"{name} {status}"
            for code in codes:
                assert ERROR_CODES[code][0] == int(status), f"{name} {status} lists {code}"
                assert f"`{code}`" in body["description"], f"{name} {status} does not describe {code}"
            assert body["content"]["application/json"].get("examples"), f"{name} {status} has no example"


def test_sts_token_lists_what_it_can_answer_and_nothing_else(schema):
    responses = schema["paths"]["/api/uploads/sts-token/"]["post"]["responses"]

    def codes(status: str) -> set[str]:
        return set(responses[status]["content"]["application/json"]["schema"]["properties"]["code"]["enum"])

    assert codes("403") == {
        "permission_denied",
        "quota_exceeded",
    }  # not outside_prefix: the avatar endpoint's
    assert codes("429") == {"throttled"}
    assert codes("503") == {
        "sts_throttled",
        "sts_unavailable",
        "sts_busy",
        "audit_unavailable",
        "database_unavailable",
    }
    assert "404" not in responses and "409" not in responses


def _texts(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary", "title") and isinstance(value, str):
                yield f"{path}/{key}", value
            else:
                yield from _texts(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _texts(value, f"{path}/{index}")


def test_descriptions_render_in_swagger_ui_without_losing_angle_brackets(schema):
    """Swagger UI renders Markdown and drops unknown HTML tags: `user/<id>/` must be code-formatted."""
    assert "`user/<id>/`" in schema["info"]["description"]
    for where, text in _texts(schema):
        outside_code = re.sub(r"``.*?``|`[^`]*`", "", text, flags=re.S)
        assert not re.search(r"<[A-Za-z/!]", outside_code), f"{where}: {text!r}"
