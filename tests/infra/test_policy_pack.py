"""Security posture, policy-pack style: every rule holds for every inference mode, and each rule
demonstrably fires on a stack that breaks it (so none passes vacuously)."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from edgescribe.settings import ResourceNames, function_name
from infra import access, iam
from infra.program import Platform
from tests.infra import policy_pack
from tests.infra.harness import BASE_CONFIG, DeployedStack, deploy

REPOSITORY = Path(__file__).resolve().parents[2]


def test_every_rule_holds_for_every_inference_mode(any_stack: DeployedStack) -> None:
    assert policy_pack.violations(any_stack) == {}


def test_default_stack_grants_nothing_on_every_resource(sagemaker_stack: DeployedStack) -> None:
    """Without a VPC there is no excuse at all: no function role names ``"*"`` as a resource."""
    for name, role in policy_pack.function_roles(sagemaker_stack).items():
        for policy in sagemaker_stack.referencing("aws:iam/rolePolicy:RolePolicy", "role", role.id):
            assert '"*"' not in policy.inputs["policy"], name


def _expected_reach(stack: str) -> dict[str, dict[str, set[str]]]:
    """Which buckets, queues and tables each function may touch, written out independently of
    ``infra/access.py`` (a change there that widens access must change this table too)."""
    names = ResourceNames(stack=stack)
    schedule_dlq = f"edgescribe-{stack}-schedules-dlq"
    return {
        function_name(stack, "batch-transcription"): {
            "bucket": {names.recordings_bucket, names.transcripts_bucket, names.models_bucket},
            "queue": {names.transcription_queue},
            "table": {names.idempotency_table},
        },
        function_name(stack, "api"): {
            "bucket": {
                names.recordings_bucket,
                names.transcripts_bucket,
                names.feedback_bucket,
                names.models_bucket,
            },
            "queue": set(),
            "table": {names.jobs_table, names.devices_table},
        },
        function_name(stack, "retraining-trigger"): {
            "bucket": {names.feedback_bucket, names.models_bucket},
            "queue": {schedule_dlq},
            "table": set(),
        },
        function_name(stack, "model-distribution"): {
            # models and channels; shadow results, assessments and the fleet for ``advance``
            "bucket": {names.models_bucket, names.transcripts_bucket, names.feedback_bucket},
            "queue": {schedule_dlq},
            "table": {names.devices_table},
        },
    }


def test_each_function_reaches_only_its_own_buckets_queues_and_tables(
    any_stack: DeployedStack,
) -> None:
    expected = _expected_reach(any_stack.stack)
    assert set(policy_pack.function_roles(any_stack)) == set(expected)
    for function, reach in expected.items():
        assert policy_pack.reach(any_stack, function) == reach, function


def test_each_function_writes_only_under_its_own_prefixes(sagemaker_stack: DeployedStack) -> None:
    stack = sagemaker_stack.stack
    names = ResourceNames(stack=stack)
    assert policy_pack.object_writes(
        sagemaker_stack, function_name(stack, "batch-transcription")
    ) == {
        f"{names.transcripts_bucket}/transcripts/*",
        f"{names.transcripts_bucket}/errors/*",
        f"{names.transcripts_bucket}/shadow/*",
    }
    # The API uploads recordings, stores synchronous and devices' offline transcripts, feedback and
    # moves channels; it never writes a model or an error record.
    assert policy_pack.object_writes(sagemaker_stack, function_name(stack, "api")) == {
        f"{names.recordings_bucket}/recordings/*",
        f"{names.transcripts_bucket}/transcripts/*",
        f"{names.feedback_bucket}/feedback/*",
        f"{names.models_bucket}/models/channels/*",
    }
    # The retraining trigger writes assessments and training jobs, never feedback or models.
    assert policy_pack.object_writes(
        sagemaker_stack, function_name(stack, "retraining-trigger")
    ) == {
        f"{names.feedback_bucket}/assessments/*",
        f"{names.models_bucket}/training/*",
    }
    assert policy_pack.object_writes(
        sagemaker_stack, function_name(stack, "model-distribution")
    ) == {
        f"{names.models_bucket}/models/*",
        f"{names.models_bucket}/triton/*",
        f"{names.models_bucket}/training/jobs/*",
    }


def test_every_aws_resource_is_a_child_of_a_component(sagemaker_stack: DeployedStack) -> None:
    assert policy_pack.orphans(sagemaker_stack) == []
    components = [r for r in sagemaker_stack.resources if r.type.startswith("edgescribe:")]
    assert all(sagemaker_stack.children(c) for c in components)


def test_stack_outputs_name_everything_an_operator_needs(sagemaker_stack: DeployedStack) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    outputs = sagemaker_stack.outputs
    assert outputs["recordingsBucket"] == names.recordings_bucket
    assert outputs["transcriptsBucket"] == names.transcripts_bucket
    assert outputs["modelsBucket"] == names.models_bucket
    assert outputs["feedbackBucket"] == names.feedback_bucket
    assert outputs["transcriptionQueueUrl"].endswith(f"/{names.transcription_queue}")
    assert outputs["transcriptionDeadLetterQueueUrl"].endswith(f"/{names.transcription_dlq}")
    assert outputs["inferenceEndpointName"] == f"edgescribe-{names.stack}-triton"
    assert outputs["apiUrl"].startswith("https://")


def test_pulumi_entry_point_builds_the_same_stack() -> None:
    """``infra/__main__.py`` (what ``pulumi up`` runs) exports the program's stack outputs."""
    exported: dict[str, Any] = {}

    def run_entry_point() -> Platform:
        original = pulumi.export
        pulumi.export = lambda name, value: exported.__setitem__(name, value)
        try:
            module = runpy.run_path(str(REPOSITORY / "infra" / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original
        platform: Platform = module["platform"]
        return platform

    stack = deploy(BASE_CONFIG, stack="entry", build=run_entry_point)
    assert set(exported) == set(stack.outputs)
    assert policy_pack.violations(stack) == {}


# --- each rule fires on a stack that breaks it ---------------------------------------------------


def test_rule_catches_a_bucket_policy_without_the_tls_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        iam, "tls_only_bucket_policy", lambda arn, extra=(): iam.policy_document([])
    )
    broken = deploy(BASE_CONFIG, stack="notls")
    found = policy_pack.not_tls_only(broken)
    assert len(found) == 4
    assert all("plain-HTTP" in f for f in found)


def test_rule_catches_a_wildcard_and_an_extra_bucket_in_a_function_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    greedy = access.FunctionAccess(
        objects=(
            *access.FUNCTION_ACCESS["retraining-trigger"].objects,
            access.ObjectGrant("transcripts_bucket", ("",), ("s3:*",)),
        ),
        listing=access.FUNCTION_ACCESS["retraining-trigger"].listing,
        tables=access.FUNCTION_ACCESS["retraining-trigger"].tables,
        queues=access.FUNCTION_ACCESS["retraining-trigger"].queues,
        starts_training=True,
    )
    monkeypatch.setitem(access.FUNCTION_ACCESS, "retraining-trigger", greedy)
    broken = deploy(BASE_CONFIG, stack="greedy")
    assert any("'s3:*'" in v for v in policy_pack.wildcard_grants(broken))
    reached = policy_pack.reach(broken, function_name("greedy", "retraining-trigger"))
    assert ResourceNames(stack="greedy").transcripts_bucket in reached["bucket"]


def test_rule_catches_a_queue_without_a_dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    original_queue = aws.sqs.Queue

    def queue_without_redrive(resource_name: str, **kwargs: Any) -> Any:
        kwargs.pop("redrive_policy", None)
        return original_queue(resource_name, **kwargs)

    monkeypatch.setattr(aws.sqs, "Queue", queue_without_redrive)
    broken = deploy(BASE_CONFIG, stack="nodlq")
    names = ResourceNames(stack="nodlq")
    found = policy_pack.queues_without_dead_letters(broken)
    # Without the redrive, the transcription queue has no DLQ (and the DLQ is just another queue).
    assert sorted(found) == [
        f"queue {names.transcription_dlq}: no dead-letter queue",
        f"queue {names.transcription_queue}: no dead-letter queue",
    ]


def test_rule_catches_a_function_without_alarms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "infra.components.functions.PlatformFunction._alarms", lambda *args, **kwargs: None
    )
    broken = deploy(BASE_CONFIG, stack="blind")
    assert len(policy_pack.functions_without_alarms(broken)) == 4 * 3


def test_rule_catches_an_event_source_without_partial_batch_failures(
    sagemaker_stack: DeployedStack,
) -> None:
    (mapping,) = sagemaker_stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    broken = DeployedStack(
        stack=sagemaker_stack.stack,
        resources=[
            r
            if r is not mapping
            else type(r)(r.type, r.name, r.id, {**r.inputs, "functionResponseTypes": []}, r.state)
            for r in sagemaker_stack.resources
        ],
        outputs={},
    )
    assert policy_pack.mappings_without_partial_failures(broken) != []


def test_rule_catches_unversioned_unencrypted_public_tables_and_buckets(
    sagemaker_stack: DeployedStack,
) -> None:
    def without(typ: str) -> DeployedStack:
        return DeployedStack(
            stack=sagemaker_stack.stack,
            resources=[r for r in sagemaker_stack.resources if r.type != typ],
            outputs={},
        )

    assert len(policy_pack.unversioned(without("aws:s3/bucketVersioning:BucketVersioning"))) == 4
    assert (
        len(
            policy_pack.unencrypted(
                without(
                    "aws:s3/bucketServerSideEncryptionConfiguration:"
                    "BucketServerSideEncryptionConfiguration"
                )
            )
        )
        == 4
    )
    assert (
        len(
            policy_pack.public_buckets(
                without("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
            )
        )
        == 4
    )
    tables = [
        type(r)(r.type, r.name, r.id, {**r.inputs, "pointInTimeRecovery": None}, r.state)
        if r.type == "aws:dynamodb/table:Table"
        else r
        for r in sagemaker_stack.resources
    ]
    no_pitr = DeployedStack(stack=sagemaker_stack.stack, resources=tables, outputs={})
    assert len(policy_pack.tables_without_recovery(no_pitr)) == 3


def test_rule_catches_a_managed_policy_on_a_function_role(ecs_stack: DeployedStack) -> None:
    """ECS container instances are the one allowed exception; a function role is not."""
    assert len(ecs_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")) == 2
    (attachment, *_) = ecs_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    role = f"{function_name(ecs_stack.stack, 'api')}-role"
    doctored = type(attachment)(
        attachment.type,
        "api-admin",
        "api-admin",
        {"role": role, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        attachment.state,
    )
    broken = DeployedStack(
        stack=ecs_stack.stack, resources=[*ecs_stack.resources, doctored], outputs={}
    )
    assert policy_pack.managed_policies(broken) == [
        f"role {role}: managed policy arn:aws:iam::aws:policy/AdministratorAccess is attached"
    ]
