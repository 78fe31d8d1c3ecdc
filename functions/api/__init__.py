"""The HTTP API for mobile apps and fleet devices (API Gateway HTTP API → one Lambda).

``functions.api.app.handler`` is the Lambda entry point; ``edgescribe.local.api_server`` feeds it the
same API Gateway v2 events from real HTTP on 127.0.0.1. Modules:

- ``app``: the powertools resolver, error handlers, authentication before routing;
- ``auth``: JWT verification (locally) or API Gateway authorizer claims (cloud) → ``Principal``;
- ``problems``: RFC 9457 ``application/problem+json`` errors;
- ``schemas``: request/response models (validated by powertools, exported to docs/openapi.json);
- ``routes/``: one module per resource; ``jobs``, ``feedback_store``, ``audio_body``: their logic.
"""
