"""docs/openapi.json is generated from the code, and a property-based fuzz over it finds no 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from functions.api.openapi import DOCUMENT_PATH, main, openapi_document
from tests.functions.api.conftest import Api
from tests.functions.api.routes import openapi, operations
from tests.functions.distribution.artifacts import make_model_dir

DOCUMENT = openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
OPERATIONS = [
    (method, path, DOCUMENT["paths"][path][method.lower()]) for method, path in operations()
]

HOSTILE = st.sampled_from(
    [
        "..",
        "../../models/channels/stable",
        "%2e%2e%2f",
        "a/b",
        "",
        " ",
        "\x00",
        "😀",
        "A" * 300,
        "${jndi:ldap://x}",
        "' OR 1=1 --",
        "stable",
        "dev-1",
        "-1",
        "1e999",
        "null",
        "[]",
        "{}",
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def test_the_committed_openapi_document_is_up_to_date() -> None:
    assert main(["--check"]) == 0, "run: python -m functions.api.openapi"
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == openapi_document()


def test_every_route_is_documented_with_problem_responses() -> None:
    from functions.api.app import app

    documented = {(m, p) for m, p in operations()}
    assert len(documented) == 12
    for method, path, operation in OPERATIONS:
        assert "401" in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (method, path, status)
    assert app is not None


def _schema_strategy(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values conforming to a JSON schema (the subset pydantic emits), for the 'valid' half."""
    if "$ref" in schema:
        return _schema_strategy(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]], depth + 1)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf") or []
        return st.one_of([_schema_strategy(s, depth + 1) for s in options])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" and depth < 4:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {
                name: _schema_strategy(sub, depth + 1)
                for name, sub in properties.items()
                if name in required
            },
            optional={
                name: _schema_strategy(sub, depth + 1)
                for name, sub in properties.items()
                if name not in required
            },
        )
    if kind == "array" and depth < 4:
        return st.lists(_schema_strategy(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "integer":
        return st.integers(
            min_value=int(schema.get("minimum", -5)), max_value=int(schema.get("maximum", 12))
        )
    if kind == "number":
        return st.floats(
            min_value=float(schema.get("minimum", -5)), max_value=float(schema.get("maximum", 150))
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
                lambda d: d.isoformat()
            )
        return st.one_of(HOSTILE, st.text(max_size=40))
    return JSON_VALUES


def _request_body(operation: dict[str, Any]) -> st.SearchStrategy[tuple[bytes | None, str | None]]:
    content = operation.get("requestBody", {}).get("content", {})
    json_schema = content.get("application/json", {}).get("schema")
    valid = (
        _schema_strategy(json_schema).map(lambda v: (json.dumps(v).encode(), "application/json"))
        if json_schema
        else st.nothing()
    )
    anything = st.tuples(
        st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)),
        st.sampled_from(
            ["application/json", "audio/wav", "application/octet-stream", "text/plain", None]
        ),
    )
    return st.one_of(valid, anything, st.just((None, None)))


@pytest.fixture
def published(api: Api, tmp_path: Path) -> Api:
    service = api.distribution()
    for version in (1, 2):
        service.publish(make_model_dir(tmp_path, version))
    service.promote("stable", 1, actor="fuzz")
    service.promote("canary", 2, actor="fuzz", rollout_percent=50)
    return api


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzing_every_documented_operation_finds_no_5xx(
    published: Api, data: st.DataObject
) -> None:
    api = published
    method, template, operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    path_values = {
        p["name"]: data.draw(
            st.one_of(
                st.just("dev-1"), _schema_strategy(p["schema"]), HOSTILE, st.text(max_size=20)
            ),
            label=p["name"],
        )
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }
    path = template
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", quote(str(value), safe="") or "x")
    query = {
        p["name"]: str(
            data.draw(st.one_of(_schema_strategy(p["schema"]), HOSTILE), label=p["name"])
        )
        for p in operation.get("parameters", [])
        if p["in"] == "query" and data.draw(st.booleans(), label=f"send {p['name']}")
    }
    role = data.draw(st.sampled_from(["app", "device", "admin"]), label="role")
    tenant = data.draw(st.sampled_from(["acme", "platform"]), label="tenant")
    subject = data.draw(
        st.sampled_from(["dev-1", str(next(iter(path_values.values()), "dev-1"))]), label="sub"
    )
    body, content_type = data.draw(_request_body(operation), label="body")

    response = api.call(
        method,
        path,
        token=api.token(role, subject, tenant),
        body=body,
        content_type=content_type,
        query=query or None,
    )

    event(f"{method} {template} -> {response.status}")
    assert response.status < 500, (method, path, response.body[:500])
    if response.status >= 400:
        problem = json.loads(response.body)
        assert response.content_type == "application/problem+json"
        assert problem["status"] == response.status
        assert problem["detail"]
    assert str(response.status) in operation["responses"], (
        method,
        template,
        response.status,
        response.body[:300],
    )
