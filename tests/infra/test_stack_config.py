"""Stack settings: defaults are safe, and every bad value stops ``pulumi up`` naming its key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from edgescribe.settings import ResourceNames
from infra.stack_config import KEYS, LOG_RETENTION_DAYS, InfraConfigError, parse_config
from tests.infra.harness import BASE_CONFIG, ECS_CONFIG, TRITON_IMAGE

REPOSITORY = Path(__file__).resolve().parents[2]


def test_defaults_are_private_protected_and_cheap_to_keep() -> None:
    config = parse_config("dev", {"tritonImageUri": TRITON_IMAGE, "tritonModelVersion": "1"})
    assert config.names == ResourceNames(stack="dev")
    assert config.deletion_protection is True
    assert config.recording_retention_days == 30
    assert config.transcript_retention_days is None
    assert config.log_retention_days in LOG_RETENTION_DAYS
    assert config.image_tag is None
    assert not config.deploys_functions
    assert config.inference.mode == "sagemaker"
    assert config.inference.instance_type == "ml.g4dn.xlarge"
    assert config.inference.min_capacity <= config.inference.max_capacity
    # No issuer configured: the API gets its own user pool, whose custom claims carry a prefix.
    assert config.api.jwt_issuer is None
    assert (config.api.tenant_claim, config.api.role_claim) == ("custom:tenant", "custom:role")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"recordingRetentionDay": "7"}, "recordingRetentionDay"),
        ({"logRetentionDays": "31"}, "logRetentionDays"),
        ({"recordingRetentionDays": "a week"}, "recordingRetentionDays"),
        ({"recordingRetentionDays": "0"}, "recordingRetentionDays"),
        ({"batchSize": "11"}, "batchSize"),
        ({"batchMaxConcurrency": "1"}, "batchMaxConcurrency"),
        ({"deletionProtection": "maybe"}, "deletionProtection"),
        ({"imageTag": "latest; rm -rf /"}, "imageTag"),
        ({"alarmEmail": "ops-at-example"}, "alarmEmail"),
        ({"retrainingSchedule": "every day"}, "retrainingSchedule"),
        ({"inferenceMode": "gpu"}, "inferenceMode"),
        ({"tritonImageUri": "nvcr.io/nvidia/tritonserver:24.09-py3"}, "tritonImageUri"),
        ({"tritonModelVersion": None}, "tritonModelVersion"),
        ({"inferenceInstanceType": "g4dn.xlarge"}, "inferenceInstanceType"),
        ({"inferenceMinCapacity": "3", "inferenceMaxCapacity": "2"}, "inferenceMaxCapacity"),
        ({"jwtIssuer": "https://issuer.example.com/"}, "jwtAudiences"),
        ({"jwtIssuer": "http://issuer.example.com/", "jwtAudiences": "x"}, "jwtIssuer"),
        ({"apiDomainName": "api.example.com"}, "apiCertificateArn"),
        ({"trainingImageUri": "docker.io/library/python:3.11"}, "trainingImageUri"),
    ],
)
def test_bad_setting_is_refused_naming_its_key(raw: dict[str, str | None], key: str) -> None:
    values = {**BASE_CONFIG, **raw}
    settings = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(InfraConfigError) as caught:
        parse_config("dev", settings)
    assert caught.value.key == key
    assert f"edgescribe:{key}" in str(caught.value)


@pytest.mark.parametrize("stack", ["Prod", "a" * 21, "dev_1", "-dev", ""])
def test_stack_name_that_cannot_name_a_bucket_is_refused(stack: str) -> None:
    with pytest.raises(InfraConfigError, match="stack name"):
        parse_config(stack, dict(BASE_CONFIG))


def test_ecs_mode_needs_a_vpc_and_two_private_subnets() -> None:
    without_vpc = {k: v for k, v in ECS_CONFIG.items() if k != "vpcId"}
    with pytest.raises(InfraConfigError) as caught:
        parse_config("dev", without_vpc)
    assert caught.value.key == "vpcId"
    one_subnet = {**ECS_CONFIG, "subnetIds": json.dumps(["subnet-0aaa1111"])}
    with pytest.raises(InfraConfigError) as caught:
        parse_config("dev", one_subnet)
    assert caught.value.key == "subnetIds"
    config = parse_config("dev", dict(ECS_CONFIG))
    assert config.inference.subnet_ids == ("subnet-0aaa1111", "subnet-0bbb2222")
    assert config.inference.instance_type == "g4dn.xlarge"


def test_no_gpu_mode_needs_no_triton_settings() -> None:
    config = parse_config("dev", {"inferenceMode": "none"})
    assert config.inference.mode == "none"
    assert config.inference.triton_image_uri is None


def test_lists_arrive_as_json_or_comma_separated() -> None:
    as_json = parse_config("dev", {**ECS_CONFIG, "subnetIds": '["subnet-01", "subnet-02"]'})
    as_text = parse_config("dev", {**ECS_CONFIG, "subnetIds": "subnet-01, subnet-02"})
    assert (
        as_json.inference.subnet_ids == as_text.inference.subnet_ids == ("subnet-01", "subnet-02")
    )


def _example_stack() -> dict[str, object]:
    document = yaml.safe_load((REPOSITORY / "Pulumi.example.yaml").read_text(encoding="utf-8"))
    config: dict[str, object] = document["config"]
    return config


def test_example_stack_file_documents_every_key_and_parses() -> None:
    example = _example_stack()
    text = (REPOSITORY / "Pulumi.example.yaml").read_text(encoding="utf-8")
    for key in KEYS:
        assert re.search(rf"edgescribe:{key}\b", text), (
            f"Pulumi.example.yaml does not mention {key}"
        )
    raw = {
        key.removeprefix("edgescribe:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in example.items()
        if key.startswith("edgescribe:")
    }
    config = parse_config("example", raw)
    assert config.deletion_protection is True


def test_project_file_runs_the_infra_program_with_python() -> None:
    project = yaml.safe_load((REPOSITORY / "Pulumi.yaml").read_text(encoding="utf-8"))
    runtime = project["runtime"]
    assert (runtime if isinstance(runtime, str) else runtime["name"]) == "python"
    assert project["main"].rstrip("/") == "infra"
    assert (REPOSITORY / "infra" / "__main__.py").is_file()
