"""The cloud functions and the Lambda images they run from, as plain data.

Both the Pulumi program (``infra.components.functions``) and the image build step (``infra.bundle``)
read this module, so the handler a Lambda is configured with is the handler the build step proved
importable and torch-free. Nothing here imports Pulumi: the build step runs in CI without it.

Why two images rather than one or four (see docs/decisions/0100-function-packaging.md): the
transcription functions need numpy + onnxruntime + audio decoders (≈ 480 MB installed, over Lambda's
250 MB zip limit, hence container images); the control-plane functions need none of that, and a small
image starts faster. Sizing (memory, timeout) is argued next to each entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ImageName = Literal["transcriber", "control"]


@dataclass(frozen=True)
class ImageSpec:
    """One Lambda container image: what it installs and what it bakes in."""

    name: ImageName
    #: Direct requirements (PEP 508 names with extras); the build step pins them *and* their whole
    #: dependency closure from constraints.txt into ``requirements.lock``.
    requirements: tuple[str, ...]
    #: Released models (``models/released/<name>/``) copied into the image.
    bundled_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionSpec:
    """One cloud function: its handler, image and size."""

    #: One of ``edgescribe.settings.FUNCTIONS``; the physical name is ``settings.function_name``.
    key: str
    #: ``module.attribute`` as Lambda's image CMD wants it.
    handler: str
    image: ImageName
    memory_mb: int
    timeout_seconds: int
    #: /tmp size; recordings up to ``settings.MAX_UPLOAD_BYTES`` are read into memory, /tmp holds
    #: decoder scratch only.
    ephemeral_storage_mb: int
    #: Calls the GPU inference endpoint (gets its name, its invoke permission and, in ECS mode, a
    #: network path to the internal load balancer).
    uses_inference: bool
    description: str

    @property
    def handler_module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def handler_attribute(self) -> str:
        return self.handler.rpartition(".")[2]


#: Distributions that must never be inside a Lambda image: torch and what only torch pulls in.
#: ``triton`` is OpenAI's compiler (a torch dependency), not NVIDIA's ``tritonclient``.
BANNED_DISTRIBUTIONS: Final = (
    "torch",
    "torchaudio",
    "torchvision",
    "torchtext",
    "functorch",
    "pytorch-lightning",
    "lightning",
    "triton",
    "pytorch-triton",
    "nvidia-pytriton",
)
#: Distribution-name prefixes banned for the same reason (torch's CUDA wheels).
BANNED_DISTRIBUTION_PREFIXES: Final = ("nvidia-", "torch")
#: Top-level modules that no staged source file may import.
BANNED_IMPORTS: Final = (
    "torch",
    "torchaudio",
    "torchvision",
    "torchtext",
    "functorch",
    "pytorch_lightning",
    "lightning",
)

_CONTROL_REQUIREMENTS: Final = (
    "pydantic",
    "cryptography",
    "boto3",
    "aws-lambda-powertools",
    "pyjwt[crypto]",
)

IMAGES: Final[dict[ImageName, ImageSpec]] = {
    "transcriber": ImageSpec(
        name="transcriber",
        requirements=(
            "numpy",
            "onnxruntime",
            "soundfile",
            "scipy",
            "av",
            *_CONTROL_REQUIREMENTS,
            # The SageMaker Triton backend builds request bodies with tritonclient's HTTP helpers.
            "tritonclient[http]",
        ),
        bundled_models=("edgescribe-edge",),
    ),
    "control": ImageSpec(name="control", requirements=_CONTROL_REQUIREMENTS),
}

FUNCTIONS: Final[tuple[FunctionSpec, ...]] = (
    FunctionSpec(
        key="batch-transcription",
        handler="functions.batch_transcription.handler",
        image="transcriber",
        # The longest accepted recording (settings.MAX_AUDIO_SECONDS = 4 h) is 0.92 GB as 16 kHz
        # float32, next to the upload itself (<= 200 MB) and the model: 4 GB holds that with room,
        # and buys ~2.3 vCPUs (Lambda gives 1 vCPU per 1 769 MB), so INT8 inference of 4 h
        # (~1 440 chunks x ~40 ms) stays far under the timeout even without the GPU endpoint.
        memory_mb=4096,
        # The longest recording (4 h) must finish inside one invocation; 15 min is Lambda's maximum.
        timeout_seconds=900,
        ephemeral_storage_mb=2048,
        uses_inference=True,
        description="S3 -> SQS batch transcription of uploaded recordings",
    ),
    FunctionSpec(
        key="api",
        handler="functions.api.app.handler",
        image="transcriber",
        # Synchronous clips are <= 30 s (settings.SYNC_MAX_SECONDS): ~0.15 s of inference, but the
        # model session and a 6 MB body must fit; 2 GB also gives a full vCPU for cold starts.
        memory_mb=2048,
        # API Gateway HTTP APIs give up after 30 s; stop a little earlier so the client sees our error.
        timeout_seconds=28,
        ephemeral_storage_mb=512,
        uses_inference=True,
        description="HTTPS API for apps and devices (transcriptions, feedback, model updates)",
    ),
    FunctionSpec(
        key="retraining-trigger",
        handler="functions.retraining_trigger.handler",
        image="control",
        # Reads feedback statistics and starts at most one training job: small and short.
        memory_mb=512,
        timeout_seconds=120,
        ephemeral_storage_mb=512,
        uses_inference=False,
        description="Scheduled retraining trigger (thresholds -> SageMaker training job)",
    ),
    FunctionSpec(
        key="model-distribution",
        handler="functions.model_distribution.handler",
        image="control",
        # Publishing hashes and copies a model (tens of MB) and rewrites channel files.
        memory_mb=1024,
        timeout_seconds=300,
        ephemeral_storage_mb=1024,
        uses_inference=False,
        description="Model publishing and channel rollouts (canary health gating)",
    ),
)


def function_spec(key: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.key == key:
            return spec
    raise KeyError(f"no function {key!r}; known: {[spec.key for spec in FUNCTIONS]}")


def functions_in_image(image: ImageName) -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if spec.image == image)
