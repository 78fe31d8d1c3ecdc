"""ECR repositories for the Lambda images (``infra/images/<image>/Dockerfile``).

Tags are immutable (a tag names one build forever, so ``imageTag`` in the stack config pins exactly
what runs), images are scanned on push, and only this stack's functions may pull (repository policy
for ``lambda.amazonaws.com`` conditioned on the functions' ARNs). Old untagged layers are expired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.catalog import IMAGES, ImageName
from infra.components.context import AwsContext
from infra.naming import infra_name, prefix

#: Keep this many images per repository; older ones are deleted by the lifecycle policy.
KEEP_IMAGES = 30


class FunctionImages(pulumi.ComponentResource):
    repositories: Mapping[ImageName, aws.ecr.Repository]

    def __init__(
        self, name: str, context: AwsContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("edgescribe:images:FunctionImages", name, None, opts)
        names = context.names
        child = pulumi.ResourceOptions(parent=self)
        functions_arn = context.arn("lambda", f"function:{prefix(names)}-*")
        repositories: dict[ImageName, aws.ecr.Repository] = {}
        for image in IMAGES:
            repository = aws.ecr.Repository(
                f"{name}-{image}",
                name=infra_name(names, image),
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS"}],
                force_delete=False,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{image}-lifecycle",
                repository=repository.name,
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": f"keep the newest {KEEP_IMAGES} images",
                                "selection": {
                                    "tagStatus": "any",
                                    "countType": "imageCountMoreThan",
                                    "countNumber": KEEP_IMAGES,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),
                opts=child,
            )
            aws.ecr.RepositoryPolicy(
                f"{name}-{image}-policy",
                repository=repository.name,
                policy=functions_arn.apply(
                    lambda arn: iam.to_json(
                        iam.policy_document(
                            [
                                {
                                    "Sid": "ThisStacksFunctionsPull",
                                    "Effect": "Allow",
                                    "Principal": {"Service": "lambda.amazonaws.com"},
                                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                    "Condition": {"ArnLike": {"aws:sourceArn": arn}},
                                }
                            ]
                        )
                    )
                ),
                opts=child,
            )
            repositories[image] = repository
        self.repositories = repositories
        self.register_outputs(
            {image: repository.repository_url for image, repository in repositories.items()}
        )

    def image_uri(self, image: ImageName, tag: str) -> pulumi.Output[str]:
        return self.repositories[image].repository_url.apply(lambda url: f"{url}:{tag}")
