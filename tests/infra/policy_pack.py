"""Policy-pack rules over every resource a mocked deployment declared.

Each rule takes a ``DeployedStack`` and returns its violations as sentences (empty = compliant), the
way a Pulumi CrossGuard policy pack reports them; ``test_policy_pack.py`` asserts there are none for
every inference mode, and that each rule does report a deliberately broken stack, so no rule can pass
vacuously.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from infra import access
from tests.infra.harness import DeployedStack, MockedResource, as_list, statements

BUCKET = "aws:s3/bucket:Bucket"
QUEUE = "aws:sqs/queue:Queue"
TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

Rule = Callable[[DeployedStack], list[str]]


def _for_bucket(stack: DeployedStack, typ: str, bucket: MockedResource) -> list[MockedResource]:
    return stack.referencing(typ, "bucket", bucket.state["bucket"])


def public_buckets(stack: DeployedStack) -> list[str]:
    found = []
    for bucket in stack.of_type(BUCKET):
        name = bucket.state["bucket"]
        if bucket.inputs.get("acl") not in (None, "private"):
            found.append(f"{name}: ACL {bucket.inputs['acl']}")
        blocks = _for_bucket(
            stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket
        )
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if len(blocks) != 1 or not all(blocks[0].inputs.get(flag) is True for flag in flags):
            found.append(f"{name}: public access is not fully blocked")
        ownership = _for_bucket(
            stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket
        )
        if not ownership or ownership[0].inputs["rule"]["objectOwnership"] != "BucketOwnerEnforced":
            found.append(f"{name}: ACLs are not disabled (BucketOwnerEnforced)")
        for policy in _for_bucket(stack, "aws:s3/bucketPolicy:BucketPolicy", bucket):
            for statement in statements(policy.policy()):
                if statement["Effect"] == "Allow" and statement.get("Principal") in (
                    "*",
                    {"AWS": "*"},
                ):
                    found.append(f"{name}: bucket policy allows everyone")
    return found


def platform_key_arn(stack: DeployedStack) -> str:
    (key,) = stack.of_type("aws:kms/key:Key")
    arn: str = key.state["arn"]
    return arn


def unencrypted(stack: DeployedStack) -> list[str]:
    key = platform_key_arn(stack)
    found = []
    for bucket in stack.of_type(BUCKET):
        configs = _for_bucket(
            stack,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        rules = [rule for config in configs for rule in config.inputs["rules"]]
        defaults = [rule["applyServerSideEncryptionByDefault"] for rule in rules]
        if not any(
            d["sseAlgorithm"] == "aws:kms" and d.get("kmsMasterKeyId") == key for d in defaults
        ):
            found.append(f"bucket {bucket.state['bucket']}: not SSE-KMS with the platform key")
    for table in stack.of_type(TABLE):
        sse = table.inputs.get("serverSideEncryption") or {}
        if not (sse.get("enabled") and sse.get("kmsKeyArn") == key):
            found.append(f"table {table.state['name']}: not encrypted with the platform key")
    for queue in stack.of_type(QUEUE):
        if not (queue.inputs.get("sqsManagedSseEnabled") or queue.inputs.get("kmsMasterKeyId")):
            found.append(f"queue {queue.state['name']}: not encrypted at rest")
    for group in stack.of_type(LOG_GROUP):
        if group.inputs.get("kmsKeyId") != key:
            found.append(f"log group {group.state['name']}: not encrypted with the platform key")
    for typ, field in (
        ("aws:sns/topic:Topic", "kmsMasterKeyId"),
        ("aws:secretsmanager/secret:Secret", "kmsKeyId"),
    ):
        for resource in stack.of_type(typ):
            if resource.inputs.get(field) != key:
                found.append(f"{typ} {resource.state['name']}: not encrypted with the platform key")
    for function in stack.of_type(FUNCTION):
        if function.inputs.get("kmsKeyArn") != key:
            found.append(
                f"function {function.state['name']}: environment not encrypted with the key"
            )
    return found


def unversioned(stack: DeployedStack) -> list[str]:
    found = []
    for bucket in stack.of_type(BUCKET):
        versioning = _for_bucket(stack, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        if (
            len(versioning) != 1
            or versioning[0].inputs["versioningConfiguration"]["status"] != "Enabled"
        ):
            found.append(f"bucket {bucket.state['bucket']}: versioning is off")
    return found


def _denies_plain_http(document: dict[str, Any], resources: set[str]) -> bool:
    for statement in statements(document):
        if (
            statement["Effect"] == "Deny"
            and statement.get("Principal") == "*"
            and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and resources <= set(as_list(statement["Resource"]))
        ):
            return True
    return False


def not_tls_only(stack: DeployedStack) -> list[str]:
    found = []
    for bucket in stack.of_type(BUCKET):
        arn = bucket.state["arn"]
        policies = _for_bucket(stack, "aws:s3/bucketPolicy:BucketPolicy", bucket)
        if not any(_denies_plain_http(p.policy(), {arn, f"{arn}/*"}) for p in policies):
            found.append(f"bucket {bucket.state['bucket']}: plain-HTTP requests are not denied")
    for queue in stack.of_type(QUEUE):
        policies = stack.referencing(
            "aws:sqs/queuePolicy:QueuePolicy", "queueUrl", queue.state["url"]
        )
        if not any(_denies_plain_http(p.policy(), {queue.state["arn"]}) for p in policies):
            found.append(f"queue {queue.state['name']}: plain-HTTP requests are not denied")
    return found


def _role_policies(stack: DeployedStack, role: MockedResource) -> list[dict[str, Any]]:
    return [p.policy() for p in stack.referencing(ROLE_POLICY, "role", role.state["name"])]


def function_roles(stack: DeployedStack) -> dict[str, MockedResource]:
    """Function name -> its execution role."""
    roles = {role.state["arn"]: role for role in stack.of_type(ROLE)}
    return {fn.state["name"]: roles[fn.inputs["role"]] for fn in stack.of_type(FUNCTION)}


def _wildcards(document: dict[str, Any], allowed_star: frozenset[str]) -> list[str]:
    found = []
    for statement in statements(document):
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"statement {statement.get('Sid')} uses NotAction/NotResource")
        actions = as_list(statement.get("Action", []))
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"statement {statement.get('Sid')} grants action {action!r}")
        if "*" in as_list(statement.get("Resource", [])) and not set(actions) <= allowed_star:
            found.append(
                f"statement {statement.get('Sid')} grants {sorted(set(actions) - allowed_star)} "
                "on every resource"
            )
    return found


def wildcard_grants(stack: DeployedStack) -> list[str]:
    """No ``"*"`` action anywhere; ``"*"`` resources only for actions AWS cannot scope.

    Function roles are held tighter still: ``"*"`` only for a VPC function's network ``Describe*``
    calls (ECS mode), nothing at all otherwise.
    """
    found = []
    functions = {fn.state["name"]: fn for fn in stack.of_type(FUNCTION)}
    function_role_names = {role.state["name"]: name for name, role in function_roles(stack).items()}
    for role in stack.of_type(ROLE):
        function_name = function_role_names.get(role.state["name"])
        if function_name is not None:
            in_vpc = functions[function_name].inputs.get("vpcConfig") is not None
            allowed = frozenset(access.VPC_DESCRIBE_ACTIONS) if in_vpc else frozenset()
        else:
            allowed = access.UNSCOPABLE_ACTIONS
        for document in _role_policies(stack, role):
            found += [f"role {role.state['name']}: {w}" for w in _wildcards(document, allowed)]
        trust = json.loads(role.inputs["assumeRolePolicy"])
        for statement in statements(trust):
            principal = statement.get("Principal")
            if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
                found.append(f"role {role.state['name']}: anyone may assume it")
    return found


#: The one place an AWS managed policy is attached: ECS container instances (ECS mode), whose agent
#: needs the broad ECS and SSM permissions AWS maintains. Every other role has inline policies only.
ALLOWED_MANAGED_POLICIES = {
    "-triton-instance": {
        "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    }
}


def managed_policies(stack: DeployedStack) -> list[str]:
    found = []
    for attachment in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role, policy = attachment.inputs["role"], attachment.inputs["policyArn"]
        allowed = {
            arn
            for suffix, arns in ALLOWED_MANAGED_POLICIES.items()
            if role.endswith(suffix)
            for arn in arns
        }
        if policy not in allowed:
            found.append(f"role {role}: managed policy {policy} is attached")
    return found


def _arn_target(arn: str) -> tuple[str, str] | None:
    """(kind, name) of a bucket, queue or table ARN; None for anything else."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    service, resource = parts[2], parts[5]
    if service == "s3":
        return ("bucket", resource.split("/")[0])
    if service == "sqs":
        return ("queue", resource)
    if service == "dynamodb" and resource.startswith("table/"):
        return ("table", resource.split("/")[1])
    return None


def reach(stack: DeployedStack, function_name: str) -> dict[str, set[str]]:
    """Buckets, queues and tables a function's role names, by kind."""
    role = function_roles(stack)[function_name]
    reached: dict[str, set[str]] = {"bucket": set(), "queue": set(), "table": set()}
    for document in _role_policies(stack, role):
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            for resource in as_list(statement.get("Resource", [])):
                target = _arn_target(resource)
                if target is not None:
                    reached[target[0]].add(target[1])
    return reached


def object_writes(stack: DeployedStack, function_name: str) -> set[str]:
    """``bucket/prefix`` patterns a function may put or delete objects under."""
    role = function_roles(stack)[function_name]
    writes = set()
    for document in _role_policies(stack, role):
        for statement in statements(document):
            actions = set(as_list(statement.get("Action", [])))
            if statement["Effect"] == "Allow" and actions & {"s3:PutObject", "s3:DeleteObject"}:
                for resource in as_list(statement["Resource"]):
                    writes.add(resource.split(":::", 1)[1])
    return writes


def queues_without_dead_letters(stack: DeployedStack) -> list[str]:
    """Every queue either redrives into a dead-letter queue, or is one (and is watched)."""
    queues = {queue.state["arn"]: queue for queue in stack.of_type(QUEUE)}
    dead_letter_arns: set[str] = set()
    for queue in queues.values():
        if queue.inputs.get("redrivePolicy"):
            dead_letter_arns.add(json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"])
    for schedule in stack.of_type("aws:scheduler/schedule:Schedule"):
        dead_letter_arns.add(schedule.inputs["target"]["deadLetterConfig"]["arn"])
    for config in stack.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"):
        dead_letter_arns.add(config.inputs["destinationConfig"]["onFailure"]["destination"])
    found = []
    for arn, queue in queues.items():
        name = queue.state["name"]
        if arn in dead_letter_arns:
            watched = [
                alarm
                for alarm in stack.of_type(ALARM)
                if alarm.inputs.get("dimensions") == {"QueueName": name}
                and alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
            ]
            if not watched:
                found.append(f"dead-letter queue {name}: no alarm on its depth")
            continue
        redrive = json.loads(queue.inputs.get("redrivePolicy") or "{}")
        if redrive.get("deadLetterTargetArn") not in queues:
            found.append(f"queue {name}: no dead-letter queue")
    for arn in dead_letter_arns - set(queues):
        found.append(f"{arn} is used as a dead-letter queue but is not declared")
    return found


def functions_without_alarms(stack: DeployedStack) -> list[str]:
    found = []
    for function in stack.of_type(FUNCTION):
        name = function.state["name"]
        metrics = {
            alarm.inputs["metricName"]
            for alarm in stack.of_type(ALARM)
            if alarm.inputs.get("dimensions") == {"FunctionName": name}
            and alarm.inputs.get("alarmActions")
        }
        for metric in ("Errors", "Throttles", "Duration"):
            if metric not in metrics:
                found.append(f"function {name}: no {metric} alarm with an action")
    return found


def mappings_without_partial_failures(stack: DeployedStack) -> list[str]:
    return [
        f"event source mapping {m.name}: ReportBatchItemFailures is off"
        for m in stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        if "ReportBatchItemFailures" not in (m.inputs.get("functionResponseTypes") or [])
    ]


def tables_without_recovery(stack: DeployedStack) -> list[str]:
    return [
        f"table {t.state['name']}: point-in-time recovery is off"
        for t in stack.of_type(TABLE)
        if not (t.inputs.get("pointInTimeRecovery") or {}).get("enabled")
    ]


def logs_kept_forever(stack: DeployedStack) -> list[str]:
    return [
        f"log group {g.state['name']}: no retention"
        for g in stack.of_type(LOG_GROUP)
        if not g.inputs.get("retentionInDays")
    ]


def orphans(stack: DeployedStack) -> list[str]:
    """Every AWS resource belongs to a platform component (none hang off the stack root)."""
    components = {r.urn for r in stack.resources if r.type.startswith("edgescribe:")}
    return [
        f"{r.type} {r.name}: parent is not a platform component"
        for r in stack.resources
        if r.type.startswith("aws:") and r.parent not in components
    ]


RULES: tuple[Rule, ...] = (
    public_buckets,
    unencrypted,
    unversioned,
    not_tls_only,
    wildcard_grants,
    managed_policies,
    queues_without_dead_letters,
    functions_without_alarms,
    mappings_without_partial_failures,
    tables_without_recovery,
    logs_kept_forever,
    orphans,
)


def violations(stack: DeployedStack, rules: Iterable[Rule] = RULES) -> dict[str, list[str]]:
    return {rule.__name__: found for rule in rules if (found := rule(stack))}
