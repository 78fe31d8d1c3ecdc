"""``edgescribe eval MANIFEST.jsonl [--json] [--model DIR] [--limit N]``: CER/WER per eval set.

Manifest lines (the shape of ``/work/shared/data/speech/eval.jsonl`` and of the demo
``samples.jsonl``): ``audio`` (relative to the manifest's folder), ``text``, optional ``text_norm``
(preferred as the reference) and ``set`` (default ``default``). Both sides are normalised the same
way before scoring (``models.runtime.scoring``); rates are corpus rates per set (sum of edits / sum
of reference lengths), printed as a table or, with ``--json``, as
``{"model": {...}, "sets": {"<set>": {"n", "cer", "wer"}}, "skipped": N}`` with fractions.

Unreadable audio is skipped, counted, and named on stderr: one bad file must not hide the score of
a few hundred good ones, but the score must say it is over fewer files.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError
from edgescribe.commands.transcribe import load_transcriber
from edgescribe.progress import ProgressBar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from models.runtime.scoring import ErrorCounter

DEFAULT_SET = "default"


@dataclass(frozen=True)
class EvalItem:
    audio: Path
    reference: str
    set_name: str


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score the model on a JSONL manifest (CER/WER per set)",
        description="Transcribe every clip of a JSONL manifest and report CER/WER per set.",
    )
    parser.add_argument("manifest", type=Path, metavar="MANIFEST.jsonl")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="model folder with model.onnx + manifest.json (default: the released edge model)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="at most N utterances per set"
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (1)")
    parser.set_defaults(handler=run)


def read_manifest(path: Path, limit: int | None = None) -> list[EvalItem]:
    """Parse a JSONL eval manifest; a malformed line is a ``UserError`` naming its number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from exc
    items: list[EvalItem] = []
    per_set: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            audio, text = entry["audio"], entry.get("text_norm") or entry["text"]
            set_name = str(entry.get("set") or DEFAULT_SET)
            if not isinstance(audio, str) or not isinstance(text, str):
                raise TypeError("'audio' and 'text' must be strings")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{path}:{number}: not a manifest line ({exc!s})") from exc
        if limit is not None and per_set.get(set_name, 0) >= limit:
            continue
        per_set[set_name] = per_set.get(set_name, 0) + 1
        items.append(EvalItem(audio=path.parent / audio, reference=text, set_name=set_name))
    if not items:
        raise UserError(f"{path}: the manifest lists no utterances")
    return items


def run(args: argparse.Namespace) -> int:
    from models.runtime.audio import AudioDecodeError, decode_audio
    from models.runtime.scoring import ErrorCounter

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    items = read_manifest(args.manifest, args.limit)
    transcriber = load_transcriber(args.model, args.threads)
    counters: dict[str, ErrorCounter] = {}
    skipped: list[str] = []
    with ProgressBar(len(items), "eval") as progress:
        for item in items:
            counter = counters.setdefault(item.set_name, ErrorCounter())
            try:
                audio = decode_audio(item.audio)
            except (AudioDecodeError, OSError) as exc:
                skipped.append(
                    str(exc) if isinstance(exc, AudioDecodeError) else f"{item.audio}: {exc}"
                )
                progress.advance()
                continue
            transcript = transcriber.transcribe(audio, transcript_id=item.audio.name)
            counter.add(item.reference, transcript.text)
            progress.advance()

    for reason in skipped:
        print(f"edgescribe: skipped {reason}", file=sys.stderr)
    if skipped:
        print(
            f"edgescribe: skipped {len(skipped)} of {len(items)} unreadable files", file=sys.stderr
        )
    scored = {name: c for name, c in counters.items() if c.utterances}
    if not scored:
        raise UserError(f"{args.manifest}: none of the {len(items)} files could be decoded")

    manifest = transcriber.manifest
    if args.json:
        report = {
            "model": {
                "name": manifest.name,
                "version": manifest.version,
                "label": manifest.label,
                "quantization": manifest.quantization,
            },
            "sets": {name: c.metrics().model_dump() for name, c in scored.items()},
            "skipped": len(skipped),
        }
        print(json.dumps(report))
    else:
        print(f"model {manifest.name} v{manifest.version} ({manifest.quantization})")
        print(format_table(scored))
    return 0


def format_table(counters: Mapping[str, ErrorCounter]) -> str:
    """Rows of set / n / CER / WER in percent, plus an ``all`` row when there are several sets."""
    from models.runtime.scoring import ErrorCounter

    rows = [(name, c.utterances, c.cer, c.wer) for name, c in counters.items()]
    if len(rows) > 1:
        total = ErrorCounter()
        for counter in counters.values():
            total.merge(counter)
        rows.append(("all", total.utterances, total.cer, total.wer))
    width = max(len("set"), *(len(r[0]) for r in rows))
    lines = [f"{'set':<{width}}  {'n':>5}  {'CER':>7}  {'WER':>7}"]
    lines += [f"{name:<{width}}  {n:>5}  {c:>7.1%}  {w:>7.1%}" for name, n, c, w in rows]
    return "\n".join(lines)
