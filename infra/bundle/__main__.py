"""``python -m infra.bundle {build,check,wheels}``: stage, check, or verify the Lambda images.

* ``build``  — stage ``build/images/<image>/`` for every image (or ``--image``) and print a summary;
* ``check``  — the same checks, staged into a temporary directory and thrown away (CI);
* ``wheels`` — ask pip whether every locked requirement has a manylinux x86_64 CPython 3.11 wheel
  (needs PyPI; ``pip install --dry-run``), so ``docker build`` cannot fail on a missing wheel;
* ``smoke``  — the image without Docker: install the lock's Lambda wheels into a scratch task root
  beside the staged source and run ``verify_image.py`` there with ``python -S`` (no site-packages:
  only the lock and the standard library are importable). Needs PyPI and CPython 3.11 on Linux
  x86_64, which is what the Lambda runtime is.

Exit status 0 on success, 2 with ``infra.bundle: error: <reason>`` when a check refuses the build.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from infra.bundle.context import BUILD_INFO, StagedImage, stage_image
from infra.bundle.errors import BundleError
from infra.catalog import IMAGES, ImageName

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bundle", description="Stage and check the Lambda image contexts."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "stage the build contexts under --out"),
        ("check", "run every check, keep nothing"),
        ("wheels", "check that every locked requirement has a Lambda-compatible wheel (network)"),
        ("smoke", "install each lock for Lambda and import every handler, without Docker"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--image", action="append", choices=sorted(IMAGES), help="only this image (repeatable)"
        )
        command.add_argument("--root", type=Path, default=REPOSITORY_ROOT, help="source tree")
        command.add_argument(
            "--allow-missing-handlers",
            action="store_true",
            help="stage images whose handler modules are not all written yet (development only)",
        )
        if name == "build":
            command.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "build" / "images")
    return parser


def _stage_all(args: argparse.Namespace, out: Path) -> list[StagedImage]:
    root: Path = args.root.resolve()
    selected: list[ImageName] = args.image or list(IMAGES)
    return [
        stage_image(
            IMAGES[image],
            source_root=root,
            out_dir=out,
            constraints=root / "constraints.txt",
            dockerfiles=root / "infra" / "images",
            require_all=not args.allow_missing_handlers,
        )
        for image in selected
    ]


def _summary(staged: StagedImage) -> str:
    lines = [
        f"{staged.image}: {staged.directory}",
        f"  handlers      {', '.join(staged.handlers) or '(none)'}",
        f"  requirements  {len(staged.requirements)} locked, no torch",
        f"  source files  {len(staged.app_files)}",
        f"  digest        {staged.digest}  (tag hint {staged.tag_hint})",
    ]
    if staged.missing_handlers:
        lines.append(f"  NOT YET WRITTEN {', '.join(staged.missing_handlers)}")
    return "\n".join(lines)


def _lambda_wheels(lock: Path, target: Path, *, dry_run: bool) -> list[str]:
    """pip arguments that install ``lock`` as the Lambda image does: wheels for its platform only."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
        "--implementation", "cp", "--python-version", "3.11", "--target", str(target),
        "--requirement", str(lock), *(["--dry-run"] if dry_run else []),
    ]  # fmt: skip


def _wheels(staged: StagedImage) -> None:
    with tempfile.TemporaryDirectory(prefix="edgescribe-wheels-") as target:
        command = _lambda_wheels(staged.directory / "requirements.lock", Path(target), dry_run=True)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundleError(
            f"the {staged.image} image's lock has no Lambda-compatible wheel for some requirement:\n"
            f"{result.stderr.strip()}"
        )


def smoke_test(staged: StagedImage) -> str:
    """Install the image's lock beside its source in a scratch task root and verify it there."""
    if sys.version_info[:2] != (3, 11) or sys.platform != "linux" or platform.machine() != "x86_64":
        raise BundleError(
            "smoke needs CPython 3.11 on Linux x86_64 (the Lambda runtime's); use docker build here"
        )
    with tempfile.TemporaryDirectory(prefix="edgescribe-smoke-") as scratch:
        task = Path(scratch) / "task"
        shutil.copytree(staged.directory / "app", task)
        lock = staged.directory / "requirements.lock"
        installed = subprocess.run(
            _lambda_wheels(lock, task, dry_run=False), capture_output=True, text=True, check=False
        )
        if installed.returncode != 0:
            raise BundleError(f"installing the {staged.image} lock failed:\n{installed.stderr}")
        verified = subprocess.run(
            [
                sys.executable, "-S", str(staged.directory / "verify_image.py"),
                str(staged.directory / BUILD_INFO), str(task),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if verified.returncode != 0:
        raise BundleError(f"the {staged.image} image fails its own check:\n{verified.stderr}")
    return verified.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            for staged in _stage_all(args, args.out):
                print(_summary(staged))
            return 0
        with tempfile.TemporaryDirectory(prefix="edgescribe-bundle-") as scratch:
            for staged in _stage_all(args, Path(scratch)):
                if args.command == "wheels":
                    _wheels(staged)
                    print(f"{staged.image}: every locked requirement has a manylinux wheel")
                elif args.command == "smoke":
                    print(smoke_test(staged))
                else:
                    print(_summary(staged))
        return 0
    except BundleError as exc:
        print(f"infra.bundle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
