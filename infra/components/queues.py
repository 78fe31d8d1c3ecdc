"""The transcription queue, its dead-letter queue, and the S3 → SQS wiring.

* ``ObjectCreated`` under ``recordings/`` in the recordings bucket → the transcription queue; only
  that bucket, in this account, may send (queue policy with ``aws:SourceArn``/``aws:SourceAccount``).
* After ``settings.MAX_RECEIVE_COUNT`` failed receives a message moves to the dead-letter queue, which
  only the transcription queue may use (redrive-allow policy).
* The visibility timeout is six times the function timeout (AWS's guidance for Lambda event sources):
  a message is never handed to a second invocation while the first may still be working on it.
* Retention is 14 days (the maximum) on both, so an outage of the consumer loses nothing.
* Alarms: anything in the dead-letter queue; a recording waiting longer than
  ``oldestMessageAlarmSeconds``; and a dead letter about to expire unseen (10 of its 14 days).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from edgescribe.settings import MAX_RECEIVE_COUNT
from infra import access, iam
from infra.catalog import function_spec
from infra.components.context import AwsContext
from infra.components.observability import AlarmSpec, metric_alarm
from infra.naming import infra_name

RETENTION_SECONDS = 14 * 24 * 3600
#: Alarm before a dead letter reaches the end of its retention.
DEAD_LETTER_EXPIRY_WARNING_SECONDS = 10 * 24 * 3600
#: Lambda's guidance: visibility timeout >= 6 x the function timeout.
VISIBILITY_TIMEOUT_FACTOR = 6


def dead_letter_alarms(
    name: str,
    context: AwsContext,
    queue_name: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    what: str,
) -> None:
    metric_alarm(
        f"{name}-depth-alarm",
        context,
        AlarmSpec(
            suffix=f"{what}-dead-letters",
            description=f"{what}: messages in the dead-letter queue need an operator",
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": queue_name},
            threshold=1,
            statistic="Maximum",
        ),
        topic_arn,
        parent,
    )
    metric_alarm(
        f"{name}-expiry-alarm",
        context,
        AlarmSpec(
            suffix=f"{what}-dead-letters-expiring",
            description=f"{what}: a dead letter is 10 days old and will be deleted at 14",
            namespace="AWS/SQS",
            metric="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": queue_name},
            threshold=DEAD_LETTER_EXPIRY_WARNING_SECONDS,
            statistic="Maximum",
        ),
        topic_arn,
        parent,
    )


class TranscriptionQueues(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        recordings_bucket_id: pulumi.Input[str],
        recordings_bucket_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:queues:TranscriptionQueues", name, None, opts)
        names = context.names
        child = pulumi.ResourceOptions(parent=self)
        consumer_timeout = function_spec("batch-transcription").timeout_seconds

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=names.transcription_dlq,
            message_retention_seconds=RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=names.transcription_queue,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * consumer_timeout,
            message_retention_seconds=RETENTION_SECONDS,
            receive_wait_time_seconds=20,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
                )
            ),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-sources",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dead_letter_queue.url,
            policy=self.dead_letter_queue.arn.apply(
                lambda arn: iam.to_json(iam.tls_only_queue_policy(arn))
            ),
            opts=child,
        )
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(
                self.queue.arn, recordings_bucket_arn, context.account_id
            ).apply(
                lambda parts: iam.to_json(
                    iam.s3_notification_queue_policy(parts[0], parts[1], parts[2])
                )
            ),
            opts=child,
        )
        # S3 tests the destination when the notification is created: the queue policy must exist.
        aws.s3.BucketNotification(
            f"{name}-recordings-notification",
            bucket=recordings_bucket_id,
            queues=[
                {
                    "id": "recordings-to-transcription",
                    "queue_arn": self.queue.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": access.RECORDINGS,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy]),
        )

        metric_alarm(
            f"{name}-oldest-alarm",
            context,
            AlarmSpec(
                suffix="recordings-waiting",
                description="a recording has waited too long for transcription",
                namespace="AWS/SQS",
                metric="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": self.queue.name},
                threshold=context.config.oldest_message_alarm_seconds,
                statistic="Maximum",
            ),
            topic_arn,
            self,
        )
        dead_letter_alarms(
            f"{name}-dlq", context, self.dead_letter_queue.name, topic_arn, self, "transcription"
        )
        self.register_outputs(
            {
                "queue_url": self.queue.url,
                "queue_arn": self.queue.arn,
                "dead_letter_queue_url": self.dead_letter_queue.url,
            }
        )


class ScheduleDeadLetters(pulumi.ComponentResource):
    """Where scheduled runs that failed (after retries) end up, so they cannot fail silently."""

    queue: aws.sqs.Queue

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:queues:ScheduleDeadLetters", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=infra_name(context.names, "schedules-dlq"),
            message_retention_seconds=RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.queue.url,
            policy=self.queue.arn.apply(lambda arn: iam.to_json(iam.tls_only_queue_policy(arn))),
            opts=child,
        )
        dead_letter_alarms(f"{name}-dlq", context, self.queue.name, topic_arn, self, "schedules")
        self.register_outputs({"queue_arn": self.queue.arn})
