"""GPU inference: NVIDIA Triton, on a SageMaker real-time endpoint or an ECS service.

``inferenceMode`` picks one (docs/decisions/0102-inference-hosting.md):

* ``sagemaker`` (default): SageMaker's Triton container reads the production model repository that
  ``models/triton/publish.py`` writes to ``s3://<models bucket>/triton/<model>/`` (uncompressed S3
  prefix), on a GPU instance type from config; Application Auto Scaling tracks
  ``SageMakerVariantInvocationsPerInstance``. Functions call ``InvokeEndpoint`` (IAM-authenticated,
  no network plumbing). SageMaker copies the repository when an endpoint starts, so a new
  ``tritonModelVersion`` replaces the model (a blue/green endpoint update).
* ``ecs``: ``tritonserver --model-repository=s3://...`` polls the bucket itself, on GPU EC2
  instances of an ECS cluster, behind an internal Application Load Balancer in the given private
  subnets; functions that call it run in the VPC. Scales on requests per target.
* ``none``: no GPU; functions run the INT8 model in process (onnxruntime).

Either way the functions learn where inference lives from the environment variables that
``functions.inference.selection`` reads (``environment()``; a test feeds them to that module).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.components.context import AwsContext
from infra.components.observability import AlarmSpec, metric_alarm
from infra.naming import infra_name, prefix
from models.runtime.storage_layout import triton_repository_prefix

#: ``functions.inference.selection`` picks its backend from this variable (``onnxruntime`` when
#: there is no GPU tier); the other variables below are that module's too.
INFERENCE_VARIABLE: Final = "EDGESCRIBE_INFERENCE"
VARIANT: Final = "AllTraffic"
TRITON_HTTP_PORT: Final = 8000
#: Seconds SageMaker waits for Triton to load the repository before declaring the variant unhealthy.
STARTUP_HEALTH_TIMEOUT: Final = 600


def repository_uri(bucket: str, model_name: str) -> str:
    """``s3://<bucket>/triton/<model>/``: the repository root Triton loads (trailing slash: prefix)."""
    return f"s3://{bucket}/{triton_repository_prefix(model_name)}/"


def repository_read_statements(
    bucket_arn: str, model_name: str, key_arn: str
) -> list[iam.Statement]:
    """Read-only access to one model's repository prefix in the models bucket."""
    repository = triton_repository_prefix(model_name)
    return [
        {
            "Sid": "ReadModelRepository",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket_arn}/{repository}/*"],
        },
        {
            "Sid": "ListModelRepository",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": [f"{repository}/*", repository]}},
        },
        {
            "Sid": "DecryptModels",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": [key_arn],
        },
    ]


def image_pull_statements(repository_arn: str) -> list[iam.Statement]:
    return [
        {
            "Sid": "PullTritonImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": [repository_arn],
        },
        {
            # Registry login has no resource to scope to (listed in access.UNSCOPABLE_ACTIONS).
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        },
    ]


class SageMakerTriton(pulumi.ComponentResource):
    model_name: str
    model_version: int
    endpoint: aws.sagemaker.Endpoint
    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        models_bucket: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:inference:SageMakerTriton", name, None, opts)
        config = context.config.inference
        names = context.names
        image = config.triton_image_uri
        if image is None:
            raise ValueError("SageMakerTriton needs tritonImageUri (checked by stack_config)")
        self.model_name = config.model_name
        self.model_version = config.model_version
        child = pulumi.ResourceOptions(parent=self)
        endpoint_name = infra_name(names, "triton")
        log_group_arn = context.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{endpoint_name}")

        role = aws.iam.Role(
            f"{name}-role",
            name=infra_name(names, "triton-role"),
            description="SageMaker Triton endpoint: read the model repository, pull the image, log",
            assume_role_policy=context.account_id.apply(
                lambda account: iam.to_json(
                    iam.assume_role_policy("sagemaker.amazonaws.com", source_account=account)
                )
            ),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                models_bucket_arn, key_arn, log_group_arn, context.partition
            ).apply(
                lambda parts: iam.to_json(
                    iam.policy_document(
                        [
                            *repository_read_statements(parts[0], config.model_name, parts[1]),
                            *image_pull_statements(iam.ecr_repository_arn(image, parts[3])),
                            {
                                "Sid": "EndpointLogs",
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogGroup",
                                    "logs:CreateLogStream",
                                    "logs:DescribeLogStreams",
                                    "logs:PutLogEvents",
                                ],
                                "Resource": [parts[2], f"{parts[2]}:*"],
                            },
                        ]
                    )
                )
            ),
            opts=child,
        )
        model = aws.sagemaker.Model(
            # A new model version is a new SageMaker model (and endpoint configuration): SageMaker
            # copies the repository only when an endpoint starts, so this is how it rereads it.
            f"{name}-model-v{config.model_version}",
            execution_role_arn=role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image,
                mode="SingleModel",
                model_data_source=aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(
                    s3_data_sources=[
                        aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                            s3_uri=pulumi.Output.from_input(models_bucket).apply(
                                lambda bucket: repository_uri(bucket, config.model_name)
                            ),
                            s3_data_type="S3Prefix",
                            compression_type="None",
                        )
                    ]
                ),
                environment={
                    "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": config.model_name,
                    "EDGESCRIBE_MODEL_VERSION": str(config.model_version),
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                {
                    "variant_name": VARIANT,
                    "model_name": model.name,
                    "initial_instance_count": config.min_capacity,
                    "instance_type": config.instance_type,
                    "container_startup_health_check_timeout_in_seconds": STARTUP_HEALTH_TIMEOUT,
                }
            ],
            opts=child,
        )
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=endpoint_name,
            endpoint_config_name=endpoint_config.name,
            opts=child,
        )
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=self.endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{VARIANT}"),
            min_capacity=config.min_capacity,
            max_capacity=config.max_capacity,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                "target_value": config.invocations_per_instance_target,
                "predefined_metric_specification": {
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                },
                "scale_out_cooldown": 60,
                "scale_in_cooldown": 300,
            },
            opts=child,
        )
        dimensions: dict[str, pulumi.Input[str]] = {
            "EndpointName": self.endpoint.name,
            "VariantName": VARIANT,
        }
        metric_alarm(
            f"{name}-errors-alarm",
            context,
            AlarmSpec(
                suffix="triton-5xx",
                description="Triton endpoint answered 5xx (callers fall back to onnxruntime)",
                namespace="AWS/SageMaker",
                metric="Invocation5XXErrors",
                dimensions=dimensions,
                threshold=1,
            ),
            topic_arn,
            self,
        )
        metric_alarm(
            f"{name}-latency-alarm",
            context,
            AlarmSpec(
                suffix="triton-latency",
                description="Triton p95 model latency above 2 s for 15 minutes",
                namespace="AWS/SageMaker",
                metric="ModelLatency",  # microseconds
                dimensions=dimensions,
                threshold=2_000_000,
                statistic="p95",
                comparison="GreaterThanThreshold",
                periods=3,
            ),
            topic_arn,
            self,
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        self.register_outputs({"endpoint_name": self.endpoint_name})

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """What ``functions.inference.selection`` reads to call this endpoint."""
        return {
            INFERENCE_VARIABLE: "sagemaker",
            "SAGEMAKER_ENDPOINT": self.endpoint_name,
            "TRITON_MODEL": self.model_name,
            "TRITON_MODEL_VERSION": str(self.model_version),
        }


class EcsTriton(pulumi.ComponentResource):
    """Triton on GPU EC2 capacity of an ECS cluster, behind an internal load balancer."""

    model_name: str
    model_version: int
    #: ``host:port`` of the internal load balancer (what ``TRITON_URL`` wants).
    address: pulumi.Output[str]
    url: pulumi.Output[str]
    client_security_group: aws.ec2.SecurityGroup
    subnet_ids: tuple[str, ...]

    def __init__(
        self,
        name: str,
        context: AwsContext,
        *,
        models_bucket: pulumi.Input[str],
        models_bucket_arn: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("edgescribe:inference:EcsTriton", name, None, opts)
        config = context.config.inference
        names = context.names
        if config.vpc_id is None or config.triton_image_uri is None:
            raise ValueError("EcsTriton needs vpcId and tritonImageUri (checked by stack_config)")
        self.model_name = config.model_name
        self.model_version = config.model_version
        self.subnet_ids = config.subnet_ids
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.get_vpc_output(id=config.vpc_id)

        # Network: functions -> load balancer -> tasks, nothing else inbound.
        self.client_security_group = aws.ec2.SecurityGroup(
            f"{name}-clients",
            name=infra_name(names, "triton-clients"),
            description="Functions that call Triton",
            vpc_id=config.vpc_id,
            egress=[
                {
                    "description": "HTTPS to AWS APIs (S3, SQS, DynamoDB) and the load balancer",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": ["0.0.0.0/0"],
                },
                {
                    "description": "Triton HTTP on the internal load balancer",
                    "protocol": "tcp",
                    "from_port": 80,
                    "to_port": 80,
                    "cidr_blocks": [vpc.cidr_block],
                },
            ],
            opts=child,
        )
        balancer_group = aws.ec2.SecurityGroup(
            f"{name}-balancer",
            name=infra_name(names, "triton-lb"),
            description="Internal load balancer in front of Triton",
            vpc_id=config.vpc_id,
            ingress=[
                {
                    "description": "from EdgeScribe functions",
                    "protocol": "tcp",
                    "from_port": 80,
                    "to_port": 80,
                    "security_groups": [self.client_security_group.id],
                }
            ],
            egress=[
                {
                    "description": "to Triton tasks",
                    "protocol": "tcp",
                    "from_port": TRITON_HTTP_PORT,
                    "to_port": TRITON_HTTP_PORT,
                    "cidr_blocks": [vpc.cidr_block],
                }
            ],
            opts=child,
        )
        task_group = aws.ec2.SecurityGroup(
            f"{name}-tasks",
            name=infra_name(names, "triton-tasks"),
            description="Triton tasks: HTTP from the load balancer only",
            vpc_id=config.vpc_id,
            ingress=[
                {
                    "description": "from the load balancer",
                    "protocol": "tcp",
                    "from_port": TRITON_HTTP_PORT,
                    "to_port": TRITON_HTTP_PORT,
                    "security_groups": [balancer_group.id],
                }
            ],
            egress=[
                {
                    "description": "HTTPS to S3 (model repository), ECR, CloudWatch",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
            opts=child,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{infra_name(names, 'triton')}",
            retention_in_days=context.config.log_retention_days,
            kms_key_id=key_arn,
            opts=child,
        )
        task_role = aws.iam.Role(
            f"{name}-task-role",
            name=infra_name(names, "triton-task"),
            description="Triton task: read the model repository",
            assume_role_policy=iam.to_json(iam.assume_role_policy("ecs-tasks.amazonaws.com")),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-task-policy",
            role=task_role.id,
            policy=pulumi.Output.all(models_bucket_arn, key_arn).apply(
                lambda parts: iam.to_json(
                    iam.policy_document(
                        repository_read_statements(parts[0], config.model_name, parts[1])
                    )
                )
            ),
            opts=child,
        )
        execution_role = aws.iam.Role(
            f"{name}-execution-role",
            name=infra_name(names, "triton-exec"),
            description="ECS agent for Triton tasks: pull the image, write logs",
            assume_role_policy=iam.to_json(iam.assume_role_policy("ecs-tasks.amazonaws.com")),
            opts=child,
        )
        image = config.triton_image_uri
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=execution_role.id,
            policy=pulumi.Output.all(log_group.arn, context.partition).apply(
                lambda parts: iam.to_json(
                    iam.policy_document(
                        [
                            {
                                "Sid": "TaskLogs",
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": [parts[0], f"{parts[0]}:*"],
                            },
                            *(
                                image_pull_statements(iam.ecr_repository_arn(image, parts[1]))
                                if iam.is_ecr_image(image)
                                else []
                            ),
                        ]
                    )
                )
            ),
            opts=child,
        )

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=infra_name(names, "triton"),
            settings=[{"name": "containerInsights", "value": "enabled"}],
            opts=child,
        )
        capacity = self._gpu_capacity(name, context, cluster, task_group)
        aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=cluster.name,
            capacity_providers=[capacity.name],
            default_capacity_provider_strategies=[
                {"capacity_provider": capacity.name, "weight": 1}
            ],
            opts=child,
        )
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=infra_name(names, "triton"),
            requires_compatibilities=["EC2"],
            network_mode="awsvpc",
            task_role_arn=task_role.arn,
            execution_role_arn=execution_role.arn,
            container_definitions=pulumi.Output.all(
                models_bucket, log_group.name, context.region
            ).apply(
                lambda parts: json.dumps(
                    [
                        {
                            "name": "triton",
                            "image": image,
                            "essential": True,
                            "memoryReservation": 8192,
                            "resourceRequirements": [{"type": "GPU", "value": "1"}],
                            "command": [
                                "tritonserver",
                                f"--model-repository={repository_uri(parts[0], config.model_name)}",
                                "--model-control-mode=poll",
                                "--repository-poll-secs=60",
                                "--strict-readiness=true",
                            ],
                            "portMappings": [
                                {"containerPort": TRITON_HTTP_PORT, "protocol": "tcp"}
                            ],
                            "environment": [{"name": "AWS_DEFAULT_REGION", "value": parts[2]}],
                            "logConfiguration": {
                                "logDriver": "awslogs",
                                "options": {
                                    "awslogs-group": parts[1],
                                    "awslogs-region": parts[2],
                                    "awslogs-stream-prefix": "triton",
                                },
                            },
                        }
                    ]
                )
            ),
            opts=child,
        )
        balancer = aws.lb.LoadBalancer(
            f"{name}-lb",
            internal=True,
            load_balancer_type="application",
            subnets=list(config.subnet_ids),
            security_groups=[balancer_group.id],
            drop_invalid_header_fields=True,
            idle_timeout=60,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=TRITON_HTTP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=config.vpc_id,
            health_check={
                "path": "/v2/health/ready",
                "matcher": "200",
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            deregistration_delay=30,
            opts=child,
        )
        listener = aws.lb.Listener(
            f"{name}-listener",
            load_balancer_arn=balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            opts=child,
        )
        service = aws.ecs.Service(
            f"{name}-service",
            name="triton",
            cluster=cluster.arn,
            task_definition=task.arn,
            desired_count=config.min_capacity,
            capacity_provider_strategies=[{"capacity_provider": capacity.name, "weight": 1}],
            network_configuration={
                "subnets": list(config.subnet_ids),
                "security_groups": [task_group.id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": target_group.arn,
                    "container_name": "triton",
                    "container_port": TRITON_HTTP_PORT,
                }
            ],
            health_check_grace_period_seconds=STARTUP_HEALTH_TIMEOUT,
            # Application Auto Scaling owns the task count after creation.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[listener], ignore_changes=["desiredCount"]
            ),
        )
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.all(cluster.name, service.name).apply(
                lambda parts: f"service/{parts[0]}/{parts[1]}"
            ),
            min_capacity=config.min_capacity,
            max_capacity=config.max_capacity,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                # Requests per minute per task, the ALB analogue of invocations per instance.
                "target_value": config.invocations_per_instance_target,
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": pulumi.Output.all(
                        balancer.arn_suffix, target_group.arn_suffix
                    ).apply(lambda parts: f"{parts[0]}/{parts[1]}"),
                },
                "scale_out_cooldown": 60,
                "scale_in_cooldown": 300,
            },
            opts=child,
        )
        metric_alarm(
            f"{name}-unhealthy-alarm",
            context,
            AlarmSpec(
                suffix="triton-unhealthy",
                description="a Triton task fails its readiness check (callers fall back)",
                namespace="AWS/ApplicationELB",
                metric="UnHealthyHostCount",
                dimensions={
                    "LoadBalancer": balancer.arn_suffix,
                    "TargetGroup": target_group.arn_suffix,
                },
                threshold=1,
                statistic="Maximum",
            ),
            topic_arn,
            self,
        )
        self.address = balancer.dns_name.apply(lambda dns: f"{dns}:80")
        self.url = balancer.dns_name.apply(lambda dns: f"http://{dns}")
        self.register_outputs({"url": self.url})

    def _gpu_capacity(
        self,
        name: str,
        context: AwsContext,
        cluster: aws.ecs.Cluster,
        task_group: aws.ec2.SecurityGroup,
    ) -> aws.ecs.CapacityProvider:
        """An auto-scaling group of GPU instances running the ECS GPU-optimized AMI."""
        config = context.config.inference
        names = context.names
        child = pulumi.ResourceOptions(parent=self)
        instance_role = aws.iam.Role(
            f"{name}-instance-role",
            name=infra_name(names, "triton-instance"),
            description="ECS container instances for Triton",
            assume_role_policy=iam.to_json(iam.assume_role_policy("ec2.amazonaws.com")),
            opts=child,
        )
        for policy_name in ("AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore"):
            aws.iam.RolePolicyAttachment(
                f"{name}-instance-{policy_name}",
                role=instance_role.name,
                policy_arn=context.partition.apply(_managed_policy_arn(policy_name)),
                opts=child,
            )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile",
            name=infra_name(names, "triton-instance"),
            role=instance_role.name,
            opts=child,
        )
        ami = aws.ssm.get_parameter_output(
            name="/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-instances",
            name_prefix=f"{prefix(names)}-triton-",
            image_id=ami.value,
            instance_type=config.instance_type,
            iam_instance_profile={"arn": profile.arn},
            vpc_security_group_ids=[task_group.id],
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {"volume_size": 100, "volume_type": "gp3", "encrypted": "true"},
                }
            ],
            user_data=cluster.name.apply(
                lambda cluster_name: _base64(
                    "#!/bin/bash\n"
                    f"echo ECS_CLUSTER={cluster_name} >> /etc/ecs/ecs.config\n"
                    "echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config\n"
                    "echo ECS_ENABLE_TASK_IAM_ROLE=true >> /etc/ecs/ecs.config\n"
                )
            ),
            opts=child,
        )
        group = aws.autoscaling.Group(
            f"{name}-asg",
            name_prefix=f"{prefix(names)}-triton-",
            min_size=0,
            max_size=config.max_capacity,
            vpc_zone_identifiers=list(config.subnet_ids),
            launch_template={"id": launch_template.id, "version": "$Latest"},
            protect_from_scale_in=True,
            tags=[{"key": "AmazonECSManaged", "value": "true", "propagate_at_launch": True}],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCapacity"]),
        )
        return aws.ecs.CapacityProvider(
            f"{name}-capacity",
            name=infra_name(names, "triton-gpu"),
            auto_scaling_group_provider={
                "auto_scaling_group_arn": group.arn,
                "managed_termination_protection": "ENABLED",
                "managed_scaling": {"status": "ENABLED", "target_capacity": 100},
            },
            opts=child,
        )

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """What ``functions.inference.selection`` reads to call Triton over HTTP."""
        return {
            INFERENCE_VARIABLE: "triton-http",
            "TRITON_URL": self.address,
            "TRITON_MODEL": self.model_name,
            "TRITON_MODEL_VERSION": str(self.model_version),
        }

    def network_arns(self, context: AwsContext) -> pulumi.Output[list[str]]:
        """What a VPC function's role may create its network interfaces in (access rule 4)."""
        subnets = self.subnet_ids
        return pulumi.Output.all(
            context.partition, context.region, context.account_id, self.client_security_group.id
        ).apply(
            lambda parts: [
                f"arn:{parts[0]}:ec2:{parts[1]}:{parts[2]}:network-interface/*",
                *(f"arn:{parts[0]}:ec2:{parts[1]}:{parts[2]}:subnet/{s}" for s in subnets),
                f"arn:{parts[0]}:ec2:{parts[1]}:{parts[2]}:security-group/{parts[3]}",
            ]
        )


def _managed_policy_arn(policy: str) -> Callable[[str], str]:
    """``partition -> arn`` of an AWS managed policy (the ECS one lives under service-role/)."""
    path = "service-role/" if policy.startswith("AmazonEC2Container") else ""
    return lambda partition: f"arn:{partition}:iam::aws:policy/{path}{policy}"


def _base64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()
