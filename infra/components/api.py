"""The HTTPS API: an API Gateway HTTP API in front of the API function.

* Every route requires a valid JWT (API Gateway's JWT authorizer checks signature, issuer, audience
  and expiry before the function runs; the function maps claims to tenant and role). With no
  ``jwtIssuer`` configured the stack creates a Cognito user pool (admin-created users only) and uses
  it as the issuer, so a fresh stack is never open.
* Only the routes the API implements exist: they are read from the function's generated OpenAPI
  document (``docs/openapi.json``); anything else is a 404 from API Gateway without invoking the
  function.
* Throttling on the stage, tighter on the synchronous transcription route (each request runs the
  model); access logs as JSON in an encrypted log group; detailed per-route metrics.
* Optional custom domain (TLS 1.2) with an ACM certificate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from infra.components.context import AwsContext
from infra.components.observability import AlarmSpec, metric_alarm
from infra.naming import infra_name

#: The API function's OpenAPI document, generated from its routes (``python -m functions.api.openapi``).
OPENAPI_DOCUMENT: Final = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")


class ApiDocumentError(ValueError):
    """The OpenAPI document the routes come from is missing or unreadable."""


def api_routes(document: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(METHOD, path) of every operation in an OpenAPI document, in a stable order.

    API Gateway route keys use the same ``{param}`` path syntax as OpenAPI, so the document the
    function generates from its own routes is the route table: a route added to the function is
    a route in API Gateway on the next ``pulumi up``, and nothing else is exposed.
    """
    paths = document.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise ApiDocumentError("the OpenAPI document has no paths")
    routes = []
    for path, operations in paths.items():
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or not isinstance(operations, Mapping)
        ):
            raise ApiDocumentError(f"unreadable OpenAPI path entry {path!r}")
        routes += [(method.upper(), path) for method in operations if method in _METHODS]
    return tuple(sorted(routes, key=lambda route: (route[1], route[0])))


def read_openapi(path: Path = OPENAPI_DOCUMENT) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApiDocumentError(
            f"{path} is missing; generate it with: python -m functions.api.openapi"
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiDocumentError(f"{path} is not JSON: {exc}") from exc
    return document


SYNC_TRANSCRIPTION_ROUTE: Final = "POST /v1/transcriptions"

#: API Gateway HTTP APIs wait at most 30 s for an integration.
INTEGRATION_TIMEOUT_MS: Final = 29_000

ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
        "subject": "$context.authorizer.claims.sub",
    },
    sort_keys=True,
)


class HttpApi(pulumi.ComponentResource):
    api: aws.apigatewayv2.Api
    stage: aws.apigatewayv2.Stage
    url: pulumi.Output[str]
    issuer: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        routes: Sequence[tuple[str, str]],
        function_arn: pulumi.Input[str],
        function_invoke_arn: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:api:HttpApi", name, None, opts)
        config = context.config
        settings = config.api
        names = config.names
        child = pulumi.ResourceOptions(parent=self)
        api_name = infra_name(names, "api")

        self.issuer, audiences = self._identity(name, context)
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=api_name,
            protocol_type="HTTP",
            description=f"EdgeScribe {names.stack}: apps and devices",
            # With a custom domain, clients use only that; the default endpoint is switched off.
            disable_execute_api_endpoint=settings.domain_name is not None,
            opts=child,
        )
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-jwt",
            api_id=self.api.id,
            name="jwt",
            authorizer_type="JWT",
            identity_sources=["$request.header.Authorization"],
            jwt_configuration={"issuer": self.issuer, "audiences": audiences},
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-function",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=function_invoke_arn,
            integration_method="POST",
            payload_format_version="2.0",
            timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
            opts=child,
        )
        for method, path in routes:
            aws.apigatewayv2.Route(
                f"{name}-{method.lower()}{path.replace('/', '-').replace('{', '').replace('}', '')}",
                api_id=self.api.id,
                route_key=f"{method} {path}",
                authorization_type="JWT",
                authorizer_id=authorizer.id,
                target=integration.id.apply(
                    lambda integration_id: f"integrations/{integration_id}"
                ),
                opts=child,
            )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{api_name}",
            retention_in_days=config.log_retention_days,
            kms_key_id=key_arn,
            opts=child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings={
                "throttling_rate_limit": settings.throttle_rate,
                "throttling_burst_limit": settings.throttle_burst,
                "detailed_metrics_enabled": True,
            },
            route_settings=[
                {
                    "route_key": SYNC_TRANSCRIPTION_ROUTE,
                    "throttling_rate_limit": settings.sync_transcription_throttle_rate,
                    "throttling_burst_limit": max(
                        1, int(settings.sync_transcription_throttle_rate * 2)
                    ),
                    "detailed_metrics_enabled": True,
                }
            ]
            if SYNC_TRANSCRIPTION_ROUTE in {f"{method} {path}" for method, path in routes}
            else None,
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function_arn,
            principal="apigateway.amazonaws.com",
            # Only this API's routes (any stage, any method) may invoke the function.
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*/v1/*"),
            opts=child,
        )
        self.url = self._domain(name, settings.domain_name, settings.certificate_arn)
        self._alarms(name, context, topic_arn)
        self.register_outputs({"url": self.url, "issuer": self.issuer})

    def _identity(
        self, name: str, context: AwsContext
    ) -> tuple[pulumi.Output[str], pulumi.Output[list[str]]]:
        """The JWT issuer and audiences: configured, or a Cognito user pool of this stack."""
        settings = context.config.api
        if settings.jwt_issuer is not None:
            return (
                pulumi.Output.from_input(settings.jwt_issuer),
                pulumi.Output.from_input(list(settings.jwt_audiences)),
            )
        child = pulumi.ResourceOptions(parent=self)
        pool = aws.cognito.UserPool(
            f"{name}-users",
            name=infra_name(context.names, "users"),
            admin_create_user_config={"allow_admin_create_user_only": True},
            password_policy={
                "minimum_length": 12,
                "require_lowercase": True,
                "require_uppercase": True,
                "require_numbers": True,
                "require_symbols": False,
                "temporary_password_validity_days": 3,
            },
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration={"enabled": True},
            deletion_protection="ACTIVE" if context.config.deletion_protection else "INACTIVE",
            # Claims the API function maps to tenant isolation and roles (app | device | admin).
            schemas=[
                {
                    "name": "tenant",
                    "attribute_data_type": "String",
                    "mutable": False,
                    "string_attribute_constraints": {"min_length": "1", "max_length": "128"},
                },
                {
                    "name": "role",
                    "attribute_data_type": "String",
                    "mutable": True,
                    "string_attribute_constraints": {"min_length": "3", "max_length": "16"},
                },
            ],
            opts=child,
        )
        client = aws.cognito.UserPoolClient(
            f"{name}-app-client",
            name=infra_name(context.names, "apps"),
            user_pool_id=pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            access_token_validity=1,
            id_token_validity=1,
            refresh_token_validity=30,
            token_validity_units={
                "access_token": "hours",
                "id_token": "hours",
                "refresh_token": "days",
            },
            opts=child,
        )
        issuer = pulumi.Output.all(context.region, pool.id).apply(
            lambda parts: f"https://cognito-idp.{parts[0]}.amazonaws.com/{parts[1]}"
        )
        return issuer, client.id.apply(lambda client_id: [client_id])

    def _domain(
        self, name: str, domain_name: str | None, certificate_arn: str | None
    ) -> pulumi.Output[str]:
        if domain_name is None or certificate_arn is None:
            return self.stage.invoke_url
        child = pulumi.ResourceOptions(parent=self)
        domain = aws.apigatewayv2.DomainName(
            f"{name}-domain",
            domain_name=domain_name,
            domain_name_configuration={
                "certificate_arn": certificate_arn,
                "endpoint_type": "REGIONAL",
                "security_policy": "TLS_1_2",
            },
            opts=child,
        )
        aws.apigatewayv2.ApiMapping(
            f"{name}-mapping",
            api_id=self.api.id,
            domain_name=domain.id,
            stage=self.stage.id,
            opts=child,
        )
        return pulumi.Output.from_input(f"https://{domain_name}")

    def _alarms(self, name: str, context: AwsContext, topic_arn: pulumi.Input[str]) -> None:
        dimensions = {"ApiId": self.api.id}
        metric_alarm(
            f"{name}-5xx-alarm",
            context,
            AlarmSpec(
                suffix="api-5xx",
                description="API answered 5xx (bad input must be 4xx; 5xx is our fault)",
                namespace="AWS/ApiGateway",
                metric="5xx",
                dimensions=dimensions,
                threshold=5,
            ),
            topic_arn,
            self,
        )
        metric_alarm(
            f"{name}-latency-alarm",
            context,
            AlarmSpec(
                suffix="api-latency",
                description="API p95 latency above 10 s for 15 minutes",
                namespace="AWS/ApiGateway",
                metric="Latency",
                dimensions=dimensions,
                threshold=10_000,
                statistic="p95",
                comparison="GreaterThanThreshold",
                periods=3,
            ),
            topic_arn,
            self,
        )
