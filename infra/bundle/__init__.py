"""The build step for the Lambda images: ``python -m infra.bundle build``.

Stages one Docker build context per image (``build/images/<image>/``) from the function catalog,
after checking that nothing bound for Lambda imports or installs torch, that every handler exists, and
that every third-party import is installed by its image (``infra.bundle.context`` lists the checks).
It needs no Docker, so CI runs it on every change; ``docker build`` of a staged context is the only
step left for a machine with Docker (docs/deploy.md).
"""
