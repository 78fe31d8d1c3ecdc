"""The platform's customer-managed KMS key: buckets, tables, log groups, secrets and alarms use it.

One key per stack (rotated yearly) rather than one per resource: the functions' roles are already
scoped to their buckets and tables, and S3 bucket keys keep the KMS request count (and bill) low. The
key policy delegates to IAM (the account root statement) and admits exactly two services that must use
the key without an IAM role of ours: CloudWatch Logs, for this stack's log groups only, and CloudWatch
alarms publishing to the encrypted alarm topic.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.components.context import AwsContext
from infra.naming import infra_name, prefix


def key_policy(
    partition: str, region: str, account_id: str, stack_prefix: str
) -> iam.PolicyDocument:
    """The key policy, from resolved values (kept pure for the tests)."""
    log_groups = [
        f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/lambda/{stack_prefix}-*",
        f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/apigateway/{stack_prefix}-*",
        f"arn:{partition}:logs:{region}:{account_id}:log-group:/ecs/{stack_prefix}-*",
    ]
    return iam.policy_document(
        [
            {
                # Without this statement IAM policies could not grant use of the key at all.
                "Sid": "AccountAdministersKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsForThisStack",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:Encrypt",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            },
            {
                "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ]
    )


class PlatformKey(pulumi.ComponentResource):
    key: aws.kms.Key
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, context: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("edgescribe:platform:PlatformKey", name, None, opts)
        names = context.names
        child = pulumi.ResourceOptions(parent=self, protect=context.config.deletion_protection)
        policy = pulumi.Output.all(context.partition, context.region, context.account_id).apply(
            lambda parts: iam.to_json(key_policy(parts[0], parts[1], parts[2], prefix(names)))
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"EdgeScribe {names.stack}: buckets, tables, logs, secrets, alarms",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{infra_name(names, 'data')}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
