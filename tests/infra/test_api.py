"""The HTTP API: routes from the function's OpenAPI document, all behind the JWT authorizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgescribe.settings import function_name
from infra.components.api import (
    OPENAPI_DOCUMENT,
    SYNC_TRANSCRIPTION_ROUTE,
    ApiDocumentError,
    api_routes,
    read_openapi,
)
from tests.infra.harness import BASE_CONFIG, REGION, DeployedStack, deploy

ROUTE = "aws:apigatewayv2/route:Route"

#: The endpoints the product brief promises apps and devices.
PROMISED = {
    "POST /v1/transcriptions",
    "GET /v1/transcriptions/{transcription_id}",
    "POST /v1/feedback",
    "GET /v1/devices/{device_id}/model",
    "POST /v1/devices/{device_id}/heartbeat",
}


def test_every_operation_in_the_openapi_document_is_a_route_and_nothing_else(
    sagemaker_stack: DeployedStack,
) -> None:
    document = json.loads(OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
    documented = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    }
    deployed = {route.inputs["routeKey"] for route in sagemaker_stack.of_type(ROUTE)}
    assert deployed == documented
    assert deployed >= PROMISED


def test_every_route_requires_a_jwt(sagemaker_stack: DeployedStack) -> None:
    (authorizer,) = sagemaker_stack.of_type("aws:apigatewayv2/authorizer:Authorizer")
    (integration,) = sagemaker_stack.of_type("aws:apigatewayv2/integration:Integration")
    for route in sagemaker_stack.of_type(ROUTE):
        assert route.inputs["authorizationType"] == "JWT", route.inputs["routeKey"]
        assert route.inputs["authorizerId"] == authorizer.id
        assert route.inputs["target"] == f"integrations/{integration.id}"


def test_default_issuer_is_a_user_pool_of_the_stack(sagemaker_stack: DeployedStack) -> None:
    (pool,) = sagemaker_stack.of_type("aws:cognito/userPool:UserPool")
    assert pool.inputs["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    (authorizer,) = sagemaker_stack.of_type("aws:apigatewayv2/authorizer:Authorizer")
    jwt = authorizer.inputs["jwtConfiguration"]
    assert jwt["issuer"] == f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_AbCdEf123"
    assert jwt["audiences"] == ["4f3e2d1c0b9a8f7e6d5c4b3a2a"]
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"]
    assert sagemaker_stack.outputs["jwtIssuer"] == jwt["issuer"]


def test_configured_issuer_replaces_the_user_pool() -> None:
    stack = deploy(
        {
            **BASE_CONFIG,
            "jwtIssuer": "https://login.example.com/",
            "jwtAudiences": '["edgescribe-api", "edgescribe-devices"]',
        },
        stack="idp",
    )
    assert stack.of_type("aws:cognito/userPool:UserPool") == []
    (authorizer,) = stack.of_type("aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer.inputs["jwtConfiguration"] == {
        "issuer": "https://login.example.com/",
        "audiences": ["edgescribe-api", "edgescribe-devices"],
    }


def test_stage_throttles_logs_and_slows_down_synchronous_transcription() -> None:
    stack = deploy(
        {**BASE_CONFIG, "apiThrottleRate": "40", "syncTranscriptionThrottleRate": "4"},
        stack="throttle",
    )
    (stage,) = stack.of_type("aws:apigatewayv2/stage:Stage")
    assert stage.inputs["defaultRouteSettings"]["throttlingRateLimit"] == 40
    (sync,) = stage.inputs["routeSettings"]
    assert sync["routeKey"] == SYNC_TRANSCRIPTION_ROUTE
    assert sync["throttlingRateLimit"] == 4
    log_group = stack.named(
        "aws:cloudwatch/logGroup:LogGroup", "/aws/apigateway/edgescribe-throttle-api"
    )
    assert stage.inputs["accessLogSettings"]["destinationArn"] == log_group.state["arn"]
    log_format = json.loads(stage.inputs["accessLogSettings"]["format"])
    assert {"requestId", "status", "routeKey", "authorizerError"} <= set(log_format)


def test_only_this_api_may_invoke_the_api_function(sagemaker_stack: DeployedStack) -> None:
    (permission,) = sagemaker_stack.of_type("aws:lambda/permission:Permission")
    api_function = sagemaker_stack.named(
        "aws:lambda/function:Function", function_name(sagemaker_stack.stack, "api")
    )
    (api,) = sagemaker_stack.of_type("aws:apigatewayv2/api:Api")
    assert permission.inputs["function"] == api_function.state["arn"]
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == f"{api.state['executionArn']}/*/*/v1/*"


def test_custom_domain_maps_to_the_stage_and_becomes_the_api_url() -> None:
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c"
    stack = deploy(
        {**BASE_CONFIG, "apiDomainName": "api.example.com", "apiCertificateArn": certificate},
        stack="domain",
    )
    (domain,) = stack.of_type("aws:apigatewayv2/domainName:DomainName")
    assert domain.inputs["domainNameConfiguration"]["certificateArn"] == certificate
    assert domain.inputs["domainNameConfiguration"]["securityPolicy"] == "TLS_1_2"
    assert len(stack.of_type("aws:apigatewayv2/apiMapping:ApiMapping")) == 1
    assert stack.outputs["apiUrl"] == "https://api.example.com"
    (api,) = stack.of_type("aws:apigatewayv2/api:Api")
    assert api.inputs["disableExecuteApiEndpoint"] is True


def test_api_url_is_a_stack_output(sagemaker_stack: DeployedStack) -> None:
    assert sagemaker_stack.outputs["apiUrl"].startswith("https://")
    assert sagemaker_stack.outputs["apiUrl"].endswith(".amazonaws.com/")


def test_routes_come_out_in_gateway_syntax() -> None:
    document = {
        "paths": {
            "/v1/b/{id}": {"get": {}, "parameters": []},
            "/v1/a": {"post": {}, "get": {}},
        }
    }
    assert api_routes(document) == (
        ("GET", "/v1/a"),
        ("POST", "/v1/a"),
        ("GET", "/v1/b/{id}"),
    )


@pytest.mark.parametrize("document", [{}, {"paths": {}}, {"paths": {"v1": {"get": {}}}}])
def test_an_unusable_openapi_document_is_refused(document: dict[str, object]) -> None:
    with pytest.raises(ApiDocumentError):
        api_routes(document)


def test_a_missing_openapi_document_says_how_to_generate_it(tmp_path: Path) -> None:
    with pytest.raises(ApiDocumentError, match=r"python -m functions\.api\.openapi"):
        read_openapi(tmp_path / "openapi.json")
