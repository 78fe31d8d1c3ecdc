"""boto3 clients: one per process and endpoint, aimed at ``AWS_ENDPOINT_URL`` when it is set."""

from __future__ import annotations

import pytest

from edgescribe.local.moto_server import MotoServer
from functions.common import aws_clients


def test_clients_talk_to_the_configured_endpoint(aws_env: MotoServer) -> None:
    s3 = aws_clients.s3_client()

    assert s3.meta.endpoint_url == aws_env.endpoint_url
    s3.create_bucket(Bucket="aws-clients-probe")
    assert "aws-clients-probe" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_client_is_reused_not_rebuilt_per_call(aws_env: MotoServer) -> None:
    assert aws_clients.sqs_client() is aws_clients.sqs_client()
    assert aws_clients.dynamodb_client() is aws_clients.dynamodb_client()


def test_new_endpoint_gets_a_new_client_not_a_stale_one(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = aws_clients.s3_client()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    after = aws_clients.s3_client()
    assert after is not before
    assert after.meta.endpoint_url == "http://127.0.0.1:9"


def test_presigned_urls_are_sigv4_so_kms_encrypted_objects_can_be_fetched(
    aws_env: MotoServer,
) -> None:
    """S3 refuses SigV2 pre-signed URLs for SSE-KMS objects; devices download models through them."""
    import urllib.request

    s3 = aws_clients.s3_client()
    s3.create_bucket(Bucket="aws-clients-presign")
    s3.put_object(Bucket="aws-clients-presign", Key="models/m/1/model.onnx", Body=b"model bytes")

    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": "aws-clients-presign", "Key": "models/m/1/model.onnx"},
        ExpiresIn=60,
    )

    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "Signature=" not in url.replace("X-Amz-Signature=", "")  # no SigV2 query signature
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - moto on 127.0.0.1
        assert response.read() == b"model bytes"
