"""``edgescribe transcribe FILE... [--format json|txt|srt|vtt] [--model DIR]``.

Transcribes local files with the released edge model (or ``--model DIR``) in this process.
Results go to stdout (``json``: one transcript object per line, one line per file) or, with
``--output-dir``, to ``<dir>/<file stem>.<format>``. A file that cannot be decoded gets one line on
stderr naming it and the reason; the other files are still transcribed and the exit status is 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError
from edgescribe.progress import ProgressBar

if TYPE_CHECKING:
    from models.runtime.transcriber import Transcriber

FORMATS = ("json", "txt", "srt", "vtt")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with the local model",
        description="Transcribe WAV, FLAC, OGG, Opus, MP3, M4A or WebM files in this process.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--format", choices=FORMATS, default="json", help="output format (json)")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="model folder with model.onnx + manifest.json (default: the released edge model)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write <stem>.<format> files here instead of printing to stdout",
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (1)")
    parser.set_defaults(handler=run)


def load_transcriber(model_dir: Path | None, threads: int) -> Transcriber:
    """The model, or a ``UserError`` that says what is wrong with the folder."""
    from models.runtime.artifacts import ModelArtifactError
    from models.runtime.transcriber import Transcriber

    try:
        return Transcriber.from_model_dir(model_dir, intra_op_threads=threads)
    except ModelArtifactError as exc:
        hint = "" if model_dir is not None else " (pass --model DIR to use another model)"
        raise UserError(f"cannot load the model: {exc}{hint}") from exc


def run(args: argparse.Namespace) -> int:
    from models.runtime.audio import AudioDecodeError, decode_audio
    from models.runtime.writers import render

    transcriber = load_transcriber(args.model, args.threads)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    with ProgressBar(len(args.files), "transcribe") as progress:
        for path in args.files:
            try:
                audio = decode_audio(path)
            except (AudioDecodeError, OSError) as exc:
                progress.clear()
                print(f"edgescribe: error: {_describe(path, exc)}", file=sys.stderr)
                failures += 1
                progress.advance()
                continue
            transcript = transcriber.transcribe(audio, transcript_id=path.name)
            output = render(transcript, args.format)
            progress.clear()
            if args.output_dir is not None:
                (args.output_dir / f"{path.stem}.{args.format}").write_text(
                    output, encoding="utf-8"
                )
            elif args.format != "json" and len(args.files) > 1:
                sys.stdout.write(f"==> {path} <==\n{output}\n")
            else:
                sys.stdout.write(output)
            sys.stdout.flush()
            progress.advance()
    if failures:
        print(f"edgescribe: {failures} of {len(args.files)} files failed", file=sys.stderr)
        return 2
    return 0


def _describe(path: Path, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory, not an audio file"
    if isinstance(exc, OSError):
        return f"{path}: cannot read: {exc.strerror or exc}"
    return str(exc)
