"""The transcribing functions follow the stable channel: told so, and allowed to read what it takes.

A promote to stable must reach the cloud's transcripts; it can only if every function that
transcribes is configured to follow the channel *and* its role may read the channel file and the
models it names. Checked on the deployed (mocked) stack of every inference mode.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from edgescribe.settings import ResourceNames, function_name
from functions.inference import selection
from infra import program
from infra.catalog import FUNCTIONS
from models.runtime import storage_layout
from tests.infra.harness import DeployedStack, as_list, statements
from tests.infra.policy_pack import FUNCTION, ROLE_POLICY, function_roles

#: What following ``stable`` reads (one version's files stand for every version's).
FOLLOWED_KEYS = (
    storage_layout.channel_key("stable"),
    storage_layout.manifest_key("edgescribe-edge", 7),
    storage_layout.model_key("edgescribe-edge", 7),
)


def _environment(stack: DeployedStack, key: str) -> dict[str, str]:
    function = stack.named(FUNCTION, function_name(stack.stack, key))
    variables: dict[str, str] = function.inputs["environment"]["variables"]
    return variables


def _allows(documents: list[dict[str, Any]], action: str, resource: str) -> bool:
    for document in documents:
        for statement in statements(document):
            if statement["Effect"] != "Allow" or action not in as_list(statement["Action"]):
                continue
            if any(fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])):
                return True
    return False


def test_infra_and_the_functions_agree_on_the_variable_name() -> None:
    assert program.MODEL_CHANNEL_VARIABLE == selection.MODEL_CHANNEL_VARIABLE


def test_every_transcribing_function_follows_stable_and_only_those_are_told_to(
    any_stack: DeployedStack,
) -> None:
    names = ResourceNames(stack=any_stack.stack)
    for spec in FUNCTIONS:
        environment = _environment(any_stack, spec.key)
        if not spec.uses_inference:
            assert selection.MODEL_CHANNEL_VARIABLE not in environment, spec.key
            continue
        settings = selection.InferenceSettings.from_environment(environment)
        assert settings.model_channel == "stable", spec.key
        assert settings.models_bucket == names.models_bucket, spec.key


def test_every_transcribing_function_may_read_the_channel_and_its_models(
    any_stack: DeployedStack,
) -> None:
    names = ResourceNames(stack=any_stack.stack)
    roles = function_roles(any_stack)
    for spec in FUNCTIONS:
        if not spec.uses_inference:
            continue
        role = roles[function_name(any_stack.stack, spec.key)]
        documents = [p.policy() for p in any_stack.referencing(ROLE_POLICY, "role", role.id)]
        for key in FOLLOWED_KEYS:
            resource = f"arn:aws:s3:::{names.models_bucket}/{key}"
            assert _allows(documents, "s3:GetObject", resource), (spec.key, key)
