"""Crash-safe file writes: a reader sees the old content or the new, never a torn file.

The recipe (what SQLite, git and Mender rely on): write a temporary file in the *same directory*,
``fsync`` it, ``os.replace`` it over the target (atomic on POSIX), then ``fsync`` the directory so
the rename itself survives a power cut. A ``kill -9`` or power loss at any point leaves either the
old file or the new one, plus at worst a stray ``*.tmp`` that ``remove_stale_temporaries`` cleans.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_directory(path: Path) -> None:
    """Persist a directory's entries (creates, renames). A no-op where the OS cannot (Windows)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write_bytes(
    path: Path, data: bytes, *, before_replace: Callable[[], None] | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    ``before_replace`` runs after the temporary file is durable and before the rename: the fault
    injection hook uses it to prove a crash at that instant leaves the old content in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + TEMP_SUFFIX)
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if before_replace is not None:
        before_replace()
    os.replace(temporary, path)
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def copy_durably(source: Path, target: Path) -> None:
    """Copy a file and make its bytes durable before returning."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, length=1 << 20)
        writer.flush()
        os.fsync(writer.fileno())


def remove_tree(path: Path) -> None:
    """Delete a directory tree if it exists (stale staging left by a crash)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete ``*.tmp`` files a crash left behind; return what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for candidate in directory.glob(f"*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed
