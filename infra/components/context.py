"""Facts about the account and region the stack deploys into, shared by every component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from edgescribe.settings import ResourceNames
from infra.stack_config import PlatformConfig


@dataclass(frozen=True)
class AwsContext:
    config: PlatformConfig
    account_id: pulumi.Output[str]
    region: pulumi.Output[str]
    partition: pulumi.Output[str]

    @property
    def names(self) -> ResourceNames:
        return self.config.names

    @classmethod
    def current(cls, config: PlatformConfig) -> AwsContext:
        """Ask the provider who and where we are (no hard-coded account ids or regions)."""
        identity = aws.get_caller_identity_output()
        region = aws.get_region_output()
        partition = aws.get_partition_output()
        return cls(
            config=config,
            account_id=identity.account_id,
            region=region.region,
            partition=partition.partition,
        )

    def arn(self, service: str, resource: str, *, regional: bool = True) -> pulumi.Output[str]:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` for this stack's account."""
        return pulumi.Output.all(self.partition, self.region, self.account_id).apply(
            lambda parts: (
                f"arn:{parts[0]}:{service}:{parts[1] if regional else ''}:{parts[2]}:{resource}"
            )
        )
