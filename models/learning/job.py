"""The learning loop's training job: spec in, gated candidate out.

    python -m models.learning.job --job-id retrain-20261125T14 [--models-bucket B]

The retraining trigger writes ``training/jobs/<job_id>/spec.json`` and starts this module as a
local process (the local stack) or as a SageMaker training job (same command; SageMaker passes
``--job-id``/``--models-bucket`` as hyperparameters, see ``_sagemaker_arguments``). Steps, each
visible in ``job.json`` and ``train.log``:

1. fetch the stable model's checkpoint (``storage_layout.checkpoint_key``) and the job's data:
   corrections by their recording keys (audio is read where it lies, never copied);
2. fine-tune on the corrections, then distil the teacher's labels of the distillation set, both
   with replay of general speech (``models.learning.recipes``);
3. export the candidate exactly like a release (INT8) as the next version, upload it under
   ``storage_layout.candidate_prefix`` and its checkpoint under ``checkpoint_key``: status ``trained``;
4. the evaluation gate against stable on the held-back domain set and the general sets:
   ``gate.json`` + ``gate.md``, status ``gate_passed`` or ``gate_failed``.

Any exception marks the job ``failed`` with the reason and exits non-zero: a job never vanishes.
Publishing and promotion are not done here: a training job holds no signing key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from functions.learning.gate import EvalSet, GatePolicy, render_markdown, run_gate
from functions.learning.job_store import JobStore
from functions.learning.records import GateReport, JobStatus, TrainingExample, TrainingJobSpec
from models.learning.candidate import export_candidate, load_checkpoint, save_checkpoint
from models.learning.clips import Clip, load_clips, replay_holdout, replay_train
from models.learning.recipes import Example, RecipeConfig, distill, fine_tune
from models.runtime import storage_layout
from models.runtime.audio import AudioDecodeError, decode_audio
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The demo clips (held-out voice + human speech): a general canary set when the checkout has them.
SAMPLES_MANIFEST = Path(__file__).resolve().parents[2] / "edgescribe" / "samples" / "samples.jsonl"


class TrainingJobError(RuntimeError):
    """The job cannot go on (no spec, no checkpoint, no usable data); the message says which."""


@dataclass
class JobContext:
    """One job's connection to the models bucket, its scratch folder and its log."""

    s3: S3Client
    bucket: str
    spec: TrainingJobSpec
    workdir: Path
    log_lines: list[str] = field(default_factory=list)
    echo: Callable[[str], None] = print

    def say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        self.log_lines.append(line)
        self.echo(line)

    def flush_log(self) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=storage_layout.training_job_key(self.spec.job_id, "train.log"),
            Body="\n".join(self.log_lines).encode() + b"\n",
            ContentType="text/plain",
        )


@dataclass(frozen=True)
class JobResult:
    candidate: ModelRef
    gate: GateReport


def run_job(
    s3: S3Client,
    bucket: str,
    job_id: str,
    *,
    recipe: RecipeConfig | None = None,
    policy: GatePolicy | None = None,
    general_sets: Sequence[EvalSet] | None = None,
    echo: Callable[[str], None] = print,
) -> JobResult:
    """Run one job end to end; marks it ``failed`` (and re-raises) on any error."""
    store = JobStore(s3, bucket)
    try:
        spec = _read_spec(s3, bucket, job_id)
    except Exception as exc:
        store.update(job_id, "failed", detail=f"cannot read the job spec: {exc}")
        raise
    with tempfile.TemporaryDirectory(prefix=f"{job_id}-") as tmp:
        context = JobContext(s3=s3, bucket=bucket, spec=spec, workdir=Path(tmp), echo=echo)
        try:
            result = _run(context, store, recipe or _recipe_from_spec(spec), policy, general_sets)
        except Exception as exc:
            context.say(f"FAILED: {type(exc).__name__}: {exc}")
            store.update(job_id, "failed", detail=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            context.flush_log()
    return result


def _run(
    context: JobContext,
    store: JobStore,
    recipe: RecipeConfig,
    policy: GatePolicy | None,
    general_sets: Sequence[EvalSet] | None,
) -> JobResult:
    spec, say = context.spec, context.say
    base = spec.base_model
    say(f"job {spec.job_id}: base {base.name} v{base.version}; {spec.reason}")
    model = load_checkpoint(
        _download(context, storage_layout.checkpoint_key(base.name, base.version), "base.pt")
    )
    replay = [Example(_decode_file(clip.path), clip.text) for clip in replay_train()]
    finetune_set = _examples(context, spec.datasets.get("finetune"))
    distill_set = _examples(context, spec.datasets.get("distill"))
    if not finetune_set and not distill_set:
        raise TrainingJobError("the job has neither fine-tuning nor distillation examples")
    logs: dict[str, float | int | str] = {"job_id": spec.job_id}
    if finetune_set:
        say(f"fine-tuning on {len(finetune_set)} corrections + {len(replay)} replay clips")
        log = fine_tune(model, finetune_set, replay, recipe, progress=_progress(say, recipe))
        logs.update({f"finetune_{k}": v for k, v in log.summary().items()})
        say(
            f"fine-tune done: loss {log.first_loss:.3f} -> {log.last_loss:.3f} in {log.seconds:.0f} s"
        )
    if distill_set and spec.teacher_model is not None:
        teacher = _teacher(context, spec.teacher_model)
        say(
            f"distilling {spec.teacher_model.name} v{spec.teacher_model.version} on {len(distill_set)} clips"
        )
        log = distill(
            model,
            teacher,
            [example.audio for example in distill_set],
            replay,
            recipe,
            progress=_progress(say, recipe),
        )
        logs.update({f"distill_{k}": v for k, v in log.summary().items()})
    elif distill_set:
        say(f"{len(distill_set)} distillation clips skipped: no teacher model in the spec")
    logs["corrections"] = len(finetune_set)
    logs["distillation_clips"] = len(distill_set)

    version = _next_version(context, base.name)
    candidate_dir = context.workdir / "candidate"
    manifest = export_candidate(
        model,
        candidate_dir,
        name=base.name,
        version=version,
        parent_version=base.version,
        calibration=[example.audio for example in replay],
        training_data=logs,
    )
    checkpoint = context.workdir / "candidate.pt"
    save_checkpoint(model, checkpoint)
    _upload_candidate(context, candidate_dir, checkpoint, manifest.name, version)
    candidate = ModelRef(name=manifest.name, version=version)
    store.update(
        spec.job_id, "trained", candidate=candidate, detail=f"candidate v{version} exported"
    )
    say(
        f"candidate {manifest.name} v{version}: {manifest.size / 1e6:.2f} MB {manifest.quantization}"
    )

    baseline_dir = _download_model(context, base.name, base.version)
    sets = [EvalSet("domain", "domain", _pairs(_examples(context, spec.domain_eval)))]
    sets += list(general_sets) if general_sets is not None else default_general_sets()
    report = run_gate(
        spec.job_id,
        Transcriber.from_model_dir(baseline_dir, engine="onnxruntime-cloud"),
        Transcriber.from_model_dir(candidate_dir, engine="onnxruntime-cloud"),
        sets,
        policy or GatePolicy(),
    )
    _put_text(
        context,
        storage_layout.training_job_key(spec.job_id, "gate.json"),
        report.model_dump_json(indent=2),
    )
    _put_text(
        context, storage_layout.training_job_key(spec.job_id, "gate.md"), render_markdown(report)
    )
    for item in report.sets:
        say(f"gate {item.name}: {item.baseline_cer:.1%} -> {item.candidate_cer:.1%}")
    status: JobStatus = "gate_passed" if report.passed else "gate_failed"
    detail = "gate passed" if report.passed else "; ".join(report.reasons)
    store.update(spec.job_id, status, candidate=candidate, detail=detail)
    say(f"{status}: {detail}")
    return JobResult(candidate=candidate, gate=report)


def default_general_sets() -> list[EvalSet]:
    """General-domain canary sets shipped with the code: synthetic replay hold-out, human training
    speech that is never replayed (forgetting), and the demo clips (held-out voice, AN4 test)."""
    sets = [
        EvalSet("replay_holdout", "general", _clip_pairs(replay_holdout())),
        EvalSet("real_general", "general", _clip_pairs(load_clips("real_general"))),
    ]
    if SAMPLES_MANIFEST.is_file():
        rows = [json.loads(line) for line in SAMPLES_MANIFEST.read_text().splitlines() if line]
        clips = [Clip(SAMPLES_MANIFEST.parent / row["audio"], row["text"]) for row in rows]
        sets.append(EvalSet("samples", "general", _clip_pairs(clips)))
    return sets


def domain_eval_set() -> EvalSet:
    """The committed domain evaluation clips (the loop's test and demo domain)."""
    return EvalSet("domain", "domain", _clip_pairs(load_clips("domain_eval")))


# --- data -----------------------------------------------------------------------------------------


def _read_spec(s3: S3Client, bucket: str, job_id: str) -> TrainingJobSpec:
    key = storage_layout.training_job_key(job_id, "spec.json")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return TrainingJobSpec.model_validate_json(body)


def _examples(context: JobContext, key: str | None) -> list[Example]:
    """Examples of one data manifest; a clip that no longer decodes is logged and skipped."""
    if key is None:
        return []
    body = context.s3.get_object(Bucket=context.bucket, Key=key)["Body"].read().decode()
    examples = []
    for line in body.splitlines():
        if not line.strip():
            continue
        row = TrainingExample.model_validate_json(line)
        data = context.s3.get_object(Bucket=row.audio_bucket, Key=row.audio_key)["Body"].read()
        try:
            audio = decode_audio(data, name=row.audio_key).samples
        except AudioDecodeError as exc:
            context.say(f"skipped {row.feedback_id}: {exc}")
            continue
        examples.append(Example(audio, row.text))
    return examples


def _pairs(examples: Sequence[Example]) -> list[tuple[npt.NDArray[np.float32], str]]:
    return [(example.audio, example.text) for example in examples]


def _clip_pairs(clips: Sequence[Clip]) -> list[tuple[npt.NDArray[np.float32], str]]:
    return [(_decode_file(clip.path), clip.text) for clip in clips]


def _decode_file(path: Path) -> npt.NDArray[np.float32]:
    return decode_audio(path).samples


# --- models bucket --------------------------------------------------------------------------------


def _download(context: JobContext, key: str, filename: str) -> Path:
    target = context.workdir / filename
    try:
        context.s3.download_file(context.bucket, key, str(target))
    except Exception as exc:
        raise TrainingJobError(f"cannot fetch s3://{context.bucket}/{key}: {exc}") from exc
    return target


def _download_model(context: JobContext, name: str, version: int) -> Path:
    folder = context.workdir / f"{name}-v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    for key, filename in (
        (storage_layout.model_key(name, version), "model.onnx"),
        (storage_layout.manifest_key(name, version), "manifest.json"),
    ):
        _download(context, key, f"{folder.name}/{filename}")
    return folder


def _teacher(
    context: JobContext, ref: ModelRef
) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
    from models.runtime.session import AcousticModel as OnnxModel

    session = OnnxModel.load(_download_model(context, ref.name, ref.version))

    def label(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        log_probs, lengths = session.log_probs(
            audio[None, :], np.array([len(audio)], dtype=np.int64)
        )
        return log_probs[0, : int(lengths[0])]

    return label


def _next_version(context: JobContext, name: str) -> int:
    """One above every version published *or* already left by an earlier job as a checkpoint."""
    prefixes = (f"models/{name}/", f"{storage_layout.TRAINING_PREFIX}checkpoints/{name}/")
    versions = [0]
    for prefix in prefixes:
        paginator = context.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=context.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                head = item["Key"][len(prefix) :].split("/")[0].removesuffix(".pt")
                if head.isdigit():
                    versions.append(int(head))
    return max(versions) + 1


def _upload_candidate(
    context: JobContext, candidate_dir: Path, checkpoint: Path, name: str, version: int
) -> None:
    prefix = storage_layout.candidate_prefix(context.spec.job_id)
    for filename in ("model.onnx", "manifest.json"):
        context.s3.upload_file(
            str(candidate_dir / filename), context.bucket, f"{prefix}/{filename}"
        )
    context.s3.upload_file(
        str(checkpoint), context.bucket, storage_layout.checkpoint_key(name, version)
    )


def _put_text(context: JobContext, key: str, text: str) -> None:
    context.s3.put_object(Bucket=context.bucket, Key=key, Body=text.encode())


def _progress(say: Callable[[str], None], recipe: RecipeConfig) -> Callable[[int, float], None]:
    every = max(1, recipe.steps // 5)

    def report(step: int, loss: float) -> None:
        if step % every == 0:
            say(f"step {step}/{recipe.steps} loss {loss:.3f}")

    return report


def _recipe_from_spec(spec: TrainingJobSpec) -> RecipeConfig:
    return RecipeConfig(steps=spec.max_steps, seed=spec.seed)


# --- command line ---------------------------------------------------------------------------------


def _sagemaker_arguments(argv: list[str]) -> list[str]:
    """SageMaker passes hyperparameters in a JSON file (all values strings), not argv."""
    config = (
        Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")) / "hyperparameters.json"
    )
    if argv or not config.is_file():
        return argv
    values: dict[str, Any] = json.loads(config.read_text())
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--models-bucket", default=os.environ.get("MODELS_BUCKET"))
    args = parser.parse_args(_sagemaker_arguments(list(sys.argv[1:] if argv is None else argv)))
    if not args.models_bucket:
        parser.error("--models-bucket is required (or set MODELS_BUCKET)")
    import boto3

    s3 = boto3.client("s3")
    try:
        result = run_job(s3, args.models_bucket, args.job_id)
    except Exception as exc:
        print(f"training job {args.job_id} failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.job_id}: candidate v{result.candidate.version}, gate {'passed' if result.gate.passed else 'failed'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
