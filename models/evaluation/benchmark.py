"""One benchmark run: every model and the peer on clean, noisy and held-out-voice speech, plus speed.

Order of work (each utterance is decoded once and each noisy version is made once, then every
system hears exactly the same samples):

1. load the models (verified folders) and, if asked, the peer;
2. decode every clip of the eval manifest (unreadable ones are skipped and listed in the report);
3. speed: interleaved single-thread RTF of the models over a fixed slice of the clean clips
   (``models.evaluation.speed``);
4. accuracy: for the clean condition and each SNR, every utterance through every system
   (the peer on clean speech only unless ``peer_noisy``); then the held-out-voice set;
5. sizes, INT8-vs-fp32 comparison, data summary from the manifests, held-out text overlap.

The result is a ``BenchmarkReport``; writing it (JSON, markdown, model card) is the caller's job.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edgescribe.settings import SAMPLE_RATE
from models.evaluation.manifests import (
    DataSetSummary,
    EvalItem,
    read_eval_manifest,
    reference_texts,
    summarize_manifest,
)
from models.evaluation.model_stats import ModelInfo, describe_model
from models.evaluation.noise import NoiseBank
from models.evaluation.recognizers import (
    ModelRecognizer,
    PocketsphinxRecognizer,
    Recognizer,
)
from models.evaluation.report import (
    ALL_SETS,
    BenchmarkReport,
    BenchmarkSettings,
    HostInfo,
    Int8Comparison,
    RecognizerScores,
    SetScore,
    SpeedReport,
    snr_key,
)
from models.evaluation.speed import measure_speed, pick_clips
from models.runtime.scoring import ErrorCounter

Samples = npt.NDArray[np.float32]
DEFAULT_SNRS: tuple[float, ...] = (20.0, 10.0, 5.0, 0.0)
DEFAULT_NOISE_SEED = 2026
PEER_DESCRIPTION = "CMU PocketSphinx {version}, en-US model from its wheel, default config"


@dataclass
class BenchmarkOptions:
    eval_manifest: Path
    model_dirs: Sequence[Path]
    noise_dir: Path | None = None
    snr_db: Sequence[float] = DEFAULT_SNRS
    noise_seed: int = DEFAULT_NOISE_SEED
    heldout_manifest: Path | None = None
    heldout_seed: int | None = None
    peer: bool = True
    peer_noisy: bool = False
    limit: int | None = None
    quick: bool = False
    threads: int = 1
    speed_rounds: int = 5
    speed_seconds: float = 60.0
    #: (manifest, role) pairs summarised in the report's data section (training data, ...).
    data_manifests: Sequence[tuple[Path, str]] = ()
    #: A training manifest whose texts the held-out sentences are checked against.
    synthetic_training_manifest: Path | None = None
    progress: Callable[[str, int], ProgressReporter] | None = None


class ProgressReporter(Protocol):
    """What the benchmark needs from a progress bar (``edgescribe.progress.ProgressBar`` fits)."""

    def advance(self, steps: int = 1) -> None: ...

    def __enter__(self) -> ProgressReporter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class _NoProgress:
    def advance(self, steps: int = 1) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass


@dataclass
class _Clip:
    item: EvalItem
    samples: Samples


@dataclass
class _Scores:
    """Counters per system -> condition -> set."""

    counters: dict[str, dict[str, dict[str, ErrorCounter]]] = field(default_factory=dict)

    def add(self, system: str, condition: str, set_name: str, ref: str, hyp: str) -> None:
        by_condition = self.counters.setdefault(system, {})
        by_set = by_condition.setdefault(condition, {})
        by_set.setdefault(set_name, ErrorCounter()).add(ref, hyp)

    def sets(self, system: str, condition: str) -> dict[str, SetScore]:
        by_set = self.counters.get(system, {}).get(condition, {})
        scores = {name: _score(counter) for name, counter in by_set.items()}
        if len(by_set) > 1:
            total = ErrorCounter()
            for counter in by_set.values():
                total.merge(counter)
            scores[ALL_SETS] = _score(total)
        return scores


def _score(counter: ErrorCounter) -> SetScore:
    return SetScore(n=counter.utterances, cer=round(counter.cer, 4), wer=round(counter.wer, 4))


def _decode(items: Sequence[EvalItem], skipped: list[str]) -> list[_Clip]:
    from models.runtime.audio import AudioDecodeError, decode_audio

    clips = []
    for item in items:
        try:
            clips.append(_Clip(item, decode_audio(item.audio).samples))
        except (AudioDecodeError, OSError) as exc:
            skipped.append(
                str(exc) if isinstance(exc, AudioDecodeError) else f"{item.audio}: {exc}"
            )
    return clips


def _round_robin_by_set(clips: Sequence[_Clip]) -> list[_Clip]:
    """Clips alternating between sets (manifest order within a set): a speed slice of every set."""
    queues: dict[str, list[_Clip]] = {}
    for clip in clips:
        queues.setdefault(clip.item.set_name, []).append(clip)
    ordered: list[_Clip] = []
    for index in range(max((len(q) for q in queues.values()), default=0)):
        ordered += [q[index] for q in queues.values() if index < len(q)]
    return ordered


def host_info() -> HostInfo:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return HostInfo(
        cpu=cpu,
        cores=os.cpu_count() or 1,
        platform=platform.platform(terse=True),
        python=platform.python_version(),
        onnxruntime=onnxruntime.__version__,
    )


def _same_checkpoint(a: ModelInfo, b: ModelInfo) -> bool:
    """Both exports come from one checkpoint, as far as their manifests can tell."""
    return (
        a.architecture == b.architecture
        and a.training_data == b.training_data
        and bool(a.training_data)
    )


def compare_int8(
    models: Sequence[ModelInfo], scores: Sequence[RecognizerScores], speedup: float | None
) -> Int8Comparison | None:
    int8 = next((m for m in models if m.quantization.startswith("int8")), None)
    fp32 = next((m for m in models if m.quantization == "fp32"), None)
    if int8 is None or fp32 is None:
        return None
    by_name = {s.name: s for s in scores}
    changes: dict[str, float | None] = {}
    for mapping_name in ("clean", "heldout"):
        ours = getattr(by_name[int8.name], mapping_name)
        base = getattr(by_name[fp32.name], mapping_name)
        for set_name, score in ours.items():
            if set_name not in base:
                continue
            key = set_name if mapping_name == "clean" else f"{set_name} (held-out)"
            if set_name == ALL_SETS and mapping_name == "heldout":
                key = f"{ALL_SETS} held-out"
            reference = base[set_name].cer
            changes[key] = None if reference == 0 else round((score.cer - reference) / reference, 4)
    return Int8Comparison(
        int8_model=int8.name,
        fp32_model=fp32.name,
        same_checkpoint=_same_checkpoint(int8, fp32),
        size_ratio=round(int8.file_bytes / fp32.file_bytes, 4),
        speedup=None if speedup is None else round(speedup, 3),
        relative_cer_change=changes,
    )


def heldout_overlap_count(heldout: Sequence[EvalItem], training_manifest: Path) -> tuple[int, int]:
    """(distinct held-out sentences, how many of them occur verbatim in the training manifest)."""
    training = reference_texts(read_eval_manifest(training_manifest))
    sentences = reference_texts(heldout)
    return len(sentences), len(sentences & training)


def run_benchmark(options: BenchmarkOptions) -> BenchmarkReport:
    from models.evaluation.report import TextOverlap

    started = time.perf_counter()
    created_at = datetime.now(UTC)
    skipped: list[str] = []
    notes: list[str] = []

    model_infos = [describe_model(path) for path in options.model_dirs]
    models = [
        ModelRecognizer.load(path, intra_op_threads=options.threads) for path in options.model_dirs
    ]
    peer = PocketsphinxRecognizer() if options.peer else None
    systems: list[Recognizer] = [*models, *([peer] if peer else [])]

    eval_clips = _decode(read_eval_manifest(options.eval_manifest, limit=options.limit), skipped)
    heldout_items = (
        read_eval_manifest(options.heldout_manifest, limit=options.limit)
        if options.heldout_manifest
        else []
    )
    heldout_clips = _decode(heldout_items, skipped)
    bank = (
        NoiseBank.from_directory(options.noise_dir, seed=options.noise_seed)
        if options.noise_dir is not None and options.snr_db
        else None
    )
    snrs = list(options.snr_db) if bank is not None else []

    speed = None
    speedup = None
    if models and eval_clips:
        speed_models = (
            [ModelRecognizer.load(path, intra_op_threads=1) for path in options.model_dirs]
            if options.threads != 1
            else models
        )
        slice_ = pick_clips(
            [c.samples for c in _round_robin_by_set(eval_clips)], options.speed_seconds
        )
        run = measure_speed(speed_models, slice_, rounds=options.speed_rounds)
        speed = SpeedReport(
            threads=1,
            rounds=options.speed_rounds,
            clips=run.clips,
            audio_seconds=round(run.audio_seconds, 2),
            rtf={m.name: round(run.rtf(m.name), 5) for m in speed_models},
            rtf_rounds={
                m.name: [round(v, 5) for v in run.rtf_rounds(m.name)] for m in speed_models
            },
        )
        int8 = next((i for i in model_infos if i.quantization.startswith("int8")), None)
        fp32 = next((i for i in model_infos if i.quantization == "fp32"), None)
        if int8 is not None and fp32 is not None:
            speedup = run.speedup(int8.name, fp32.name)

    scores = _Scores()
    busy: dict[str, float] = {}
    audio_seconds: dict[str, float] = {}
    conditions: list[tuple[str, float | None]] = [("clean", None)] + [(snr_key(s), s) for s in snrs]
    steps = len(eval_clips) * len(conditions) + len(heldout_clips)
    progress: ProgressReporter = (
        options.progress("bench model", steps) if options.progress else _NoProgress()
    )
    with progress:
        for condition, snr in conditions:
            for clip in eval_clips:
                samples = (
                    clip.samples
                    if snr is None or bank is None
                    else bank.mix(clip.samples, snr_db=snr, key=clip.item.key)
                )
                for system in systems:
                    if system.kind == "peer" and snr is not None and not options.peer_noisy:
                        continue
                    t0 = time.perf_counter()
                    hypothesis = system.recognize(samples, key=clip.item.key)
                    if snr is None:
                        busy[system.name] = busy.get(system.name, 0.0) + time.perf_counter() - t0
                        audio_seconds[system.name] = (
                            audio_seconds.get(system.name, 0.0) + samples.size / SAMPLE_RATE
                        )
                    scores.add(
                        system.name, condition, clip.item.set_name, clip.item.reference, hypothesis
                    )
                progress.advance()
        for clip in heldout_clips:
            for system in systems:
                hypothesis = system.recognize(clip.samples, key=clip.item.key)
                scores.add(
                    system.name, "heldout", clip.item.set_name, clip.item.reference, hypothesis
                )
            progress.advance()

    results: list[RecognizerScores] = []
    for system in systems:
        if isinstance(system, ModelRecognizer):
            info = next(i for i in model_infos if i.name == system.name)
            description = (
                f"{info.architecture.get('kind', 'model')} '{info.architecture.get('name', '')}' "
                f"{info.params / 1e6:.2f} M params, {info.quantization}"
            )
        else:
            description = PEER_DESCRIPTION.format(version=getattr(system, "version", "?"))
        results.append(
            RecognizerScores(
                name=system.name,
                kind=system.kind,
                description=description,
                clean=scores.sets(system.name, "clean"),
                noisy={c: scores.sets(system.name, c) for c, _ in conditions[1:]}
                if system.kind == "model" or options.peer_noisy
                else {},
                heldout=scores.sets(system.name, "heldout"),
                pass_rtf=round(busy[system.name] / audio_seconds[system.name], 4)
                if audio_seconds.get(system.name)
                else None,
            )
        )

    data: list[DataSetSummary] = []
    for manifest, role in options.data_manifests:
        if manifest.is_file():
            data += summarize_manifest(manifest, role)
        else:
            notes.append(f"data summary: {manifest} not found, left out")
    data += summarize_manifest(options.eval_manifest, "eval")
    if options.heldout_manifest is not None:
        data += summarize_manifest(options.heldout_manifest, "heldout-voice")

    overlap = None
    if heldout_items and options.synthetic_training_manifest is not None:
        if options.synthetic_training_manifest.is_file():
            total, shared = heldout_overlap_count(
                heldout_items, options.synthetic_training_manifest
            )
            overlap = TextOverlap(
                sentences=total,
                in_training=shared,
                training_manifest=str(options.synthetic_training_manifest),
            )
        else:
            notes.append(
                f"held-out text overlap: {options.synthetic_training_manifest} not found, not checked"
            )
    if options.noise_dir is not None and bank is None and options.snr_db:
        notes.append("noise curve: no noise bank loaded")

    return BenchmarkReport(
        created_at=created_at,
        wall_seconds=round(time.perf_counter() - started, 1),
        host=host_info(),
        settings=BenchmarkSettings(
            eval_manifest=str(options.eval_manifest),
            noise_dir=str(options.noise_dir) if options.noise_dir else None,
            noise_seed=options.noise_seed,
            snr_db=[float(s) for s in snrs],
            heldout_manifest=str(options.heldout_manifest) if options.heldout_manifest else None,
            heldout_seed=options.heldout_seed,
            limit=options.limit,
            quick=options.quick,
            threads=options.threads,
            peer=options.peer,
            peer_noisy=options.peer_noisy,
            speed_rounds=options.speed_rounds,
        ),
        models=model_infos,
        comparison=compare_int8(model_infos, results, speedup),
        speed=speed,
        results=results,
        data=data,
        heldout_overlap=overlap,
        skipped=skipped,
        notes=notes,
    )
