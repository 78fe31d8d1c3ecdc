"""Speech manifests (JSONL) as the benchmark reads them: utterances to score, and data summaries.

A line has ``audio`` (relative to the manifest's folder), ``text`` and optionally ``text_norm``
(preferred as the reference), ``set`` (default ``default``), ``speaker`` and ``duration``. This is
the shape of ``../shared/data/speech/{train,eval}.jsonl``, of the synthetic corpus and of the
committed demo clips, so one reader serves all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel

DEFAULT_SET: Final = "default"


class ManifestError(ValueError):
    """A manifest that cannot be read or has a malformed line; the message names file and line."""


@dataclass(frozen=True)
class EvalItem:
    """One utterance to score; ``key`` identifies it stably (seeds its noise, names it in logs)."""

    key: str
    audio: Path
    reference: str
    set_name: str
    speaker: str
    duration: float | None


class DataSetSummary(BaseModel):
    """Size of one data set as the model card reports it."""

    name: str
    role: str  # "train" | "eval" | "synthetic-train" | "heldout-voice" | ...
    utterances: int
    minutes: float | None
    speakers: int | None


def _read_lines(path: Path) -> list[tuple[int, dict[str, object]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from exc
    entries: list[tuple[int, dict[str, object]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ManifestError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}:{number}: a manifest line must be a JSON object")
        entries.append((number, entry))
    return entries


def read_eval_manifest(
    path: Path, *, limit: int | None = None, sets: Iterable[str] | None = None
) -> list[EvalItem]:
    """The manifest's utterances in file order; at most ``limit`` per set, only ``sets`` if given."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    wanted = set(sets) if sets is not None else None
    items: list[EvalItem] = []
    per_set: dict[str, int] = {}
    for number, entry in _read_lines(path):
        audio = entry.get("audio")
        text = entry.get("text_norm") or entry.get("text")
        if not isinstance(audio, str) or not audio or not isinstance(text, str):
            raise ManifestError(f"{path}:{number}: needs string fields 'audio' and 'text'")
        set_name = str(entry.get("set") or DEFAULT_SET)
        if wanted is not None and set_name not in wanted:
            continue
        if limit is not None and per_set.get(set_name, 0) >= limit:
            continue
        per_set[set_name] = per_set.get(set_name, 0) + 1
        duration = entry.get("duration")
        items.append(
            EvalItem(
                key=f"{set_name}/{audio}",
                audio=path.parent / audio,
                reference=text,
                set_name=set_name,
                speaker=str(entry.get("speaker") or ""),
                duration=float(duration) if isinstance(duration, int | float) else None,
            )
        )
    if not items:
        raise ManifestError(f"{path}: the manifest lists no utterances (for the sets asked)")
    return items


def summarize_manifest(
    path: Path, role: str, *, set_name: str | None = None
) -> list[DataSetSummary]:
    """Utterances, minutes and speakers per set of a manifest (``set_name`` overrides ``set``).

    Minutes come from the ``duration`` fields; a set where any line lacks one reports ``None``
    rather than a number that silently undercounts.
    """
    totals: dict[str, list[float | None]] = {}
    speakers: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for _, entry in _read_lines(path):
        name = set_name or str(entry.get("set") or DEFAULT_SET)
        counts[name] = counts.get(name, 0) + 1
        duration = entry.get("duration")
        totals.setdefault(name, []).append(
            float(duration) if isinstance(duration, int | float) else None
        )
        speaker = entry.get("speaker")
        if isinstance(speaker, str) and speaker:
            speakers.setdefault(name, set()).add(speaker)
    summaries = []
    for name, durations in totals.items():
        known = [d for d in durations if d is not None]
        summaries.append(
            DataSetSummary(
                name=name,
                role=role,
                utterances=counts[name],
                minutes=round(sum(known) / 60, 1) if len(known) == len(durations) else None,
                speakers=len(speakers[name]) if name in speakers else None,
            )
        )
    return summaries


def reference_texts(items: Sequence[EvalItem]) -> set[str]:
    """Normalised reference texts (to measure text overlap between sets)."""
    from models.runtime.vocabulary import normalize_text

    return {normalize_text(item.reference) for item in items}
