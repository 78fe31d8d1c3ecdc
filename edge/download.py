"""Resumable, size-capped, time-bounded download of one model artifact into a partial file.

Rules (each one a defence):

* **Resume, never restart needlessly.** Bytes already in ``<sha256>.part`` are kept across cut
  connections, timeouts and ``kill -9``; the next attempt sends ``Range: bytes=<offset>-``. A server
  that ignores Range (200) or answers a different range restarts the file from zero. The partial is
  named by the *signed* sha256, so bytes of one artifact can never be resumed into another.
* **Endless data.** Never write past ``expected_size`` (the signed ``size``, itself under the
  device's hard cap): a ``Content-Length`` that would exceed it is refused before reading, and a
  stream that keeps going is cut at the cap. The partial is deleted.
* **Slow retrieval.** Every socket read has a timeout (a stalled server is a transient error), and
  the whole transfer has a deadline of ``grace + size / min_rate`` (a server trickling a byte at a
  time to stay under the read timeout is refused). The partial is kept: a slow link is not a
  hostile artifact, and the next attempt resumes.
* **Wrong length.** A server that ends the object early (its whole object is shorter than
  ``size``) is refused and the partial deleted; a *connection* that ends early is resumed.

Verification of the finished bytes (length, sha256) is ``edge.verification``'s job, not this one's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import (
    EndlessDataError,
    LengthMismatchError,
    LinkError,
    RequestRejectedError,
    ServerUnavailableError,
    SlowRetrievalError,
)
from edge.faults import fault_point

CHUNK_BYTES = 16 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class DownloadLimits:
    read_timeout_seconds: float = 30.0
    min_bytes_per_second: float = 16 * 1024.0
    grace_seconds: float = 30.0


@dataclass(frozen=True)
class DownloadResult:
    resumed_from: int  # bytes already on disk when this attempt started
    fetched: int  # bytes moved over the network by this attempt
    size: int


def download_resumable(
    url: str,
    part_path: Path,
    expected_size: int,
    limits: DownloadLimits,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> DownloadResult:
    """Bring ``part_path`` to ``expected_size`` bytes from ``url``, resuming what is there."""
    part_path.parent.mkdir(parents=True, exist_ok=True)
    offset = part_path.stat().st_size if part_path.exists() else 0
    if offset > expected_size:  # cannot be ours: start over
        part_path.unlink()
        offset = 0
    if offset == expected_size:
        return DownloadResult(resumed_from=offset, fetched=0, size=offset)

    request = urllib.request.Request(url, method="GET")  # noqa: S310 - https/http URL from the API
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    started = monotonic()
    deadline = (
        started + limits.grace_seconds + (expected_size - offset) / limits.min_bytes_per_second
    )
    try:
        response = urllib.request.urlopen(request, timeout=limits.read_timeout_seconds)  # noqa: S310
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our partial no longer fits the object: start over
            part_path.unlink(missing_ok=True)
            raise LinkError("server refused the resume range; restarting the download") from exc
        if exc.code >= 500 or exc.code in (408, 429):
            raise ServerUnavailableError(exc.code, "model download") from exc
        raise RequestRejectedError(exc.code, "model download (URL expired or forbidden)") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise LinkError(f"model download failed to start: {exc}") from exc

    with response:
        offset = _position_for(response, part_path, offset, expected_size)
        resumed_from = offset
        declared = _refuse_oversize_length(response, part_path, offset, expected_size)
        halfway = expected_size // 2
        mode = "ab" if offset else "wb"
        with part_path.open(mode) as sink:
            try:
                while True:
                    chunk = response.read1(CHUNK_BYTES)
                    if not chunk:
                        break
                    if offset + len(chunk) > expected_size:
                        sink.close()
                        part_path.unlink(missing_ok=True)
                        raise EndlessDataError(
                            f"server sent more than the signed size of {expected_size} bytes"
                        )
                    sink.write(chunk)
                    crossed_half = offset < halfway <= offset + len(chunk)
                    offset += len(chunk)
                    if crossed_half:
                        sink.flush()
                        fault_point("download-midway")
                    if monotonic() > deadline:
                        raise SlowRetrievalError(
                            f"download too slow: {offset - resumed_from} bytes in "
                            f"{monotonic() - started:.1f}s (minimum "
                            f"{limits.min_bytes_per_second:.0f} B/s); partial kept for resume"
                        )
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                raise LinkError(
                    f"download interrupted at byte {offset} of {expected_size}: {exc}"
                ) from exc
            finally:
                if not sink.closed:
                    sink.flush()
                    with contextlib.suppress(OSError):
                        os.fsync(sink.fileno())
    if offset < expected_size:
        if declared is None or offset - resumed_from < declared:
            # The *connection* ended early (or never said how long the body is): resume later.
            raise LinkError(
                f"connection closed at byte {offset} of {expected_size}; partial kept for resume"
            )
        part_path.unlink(missing_ok=True)
        raise LengthMismatchError(
            f"server's object ended at {offset} bytes, the signed manifest says {expected_size}"
        )
    return DownloadResult(resumed_from=resumed_from, fetched=offset - resumed_from, size=offset)


def _position_for(
    response: http.client.HTTPResponse, part_path: Path, offset: int, expected_size: int
) -> int:
    """Where the body starts: honour a matching 206, restart from zero on anything else."""
    status = response.status
    if status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            total = match.group(3)
            if total != "*" and int(total) != expected_size:
                part_path.unlink(missing_ok=True)
                raise LengthMismatchError(
                    f"server's object is {total} bytes, the signed manifest says {expected_size}"
                )
            return offset
        raise LinkError(
            f"server answered range {response.headers.get('Content-Range')!r} for offset {offset}"
        )
    if status == 200:
        return 0  # Range ignored: the body is the whole object; "wb" truncates the partial
    raise LinkError(f"unexpected HTTP {status} for a model download")


def _refuse_oversize_length(
    response: http.client.HTTPResponse, part_path: Path, offset: int, expected_size: int
) -> int | None:
    """The body length the server declares (None if it does not); refuse one past the cap."""
    header = response.headers.get("Content-Length")
    if header is None or not header.strip().isdigit():
        return None
    declared = int(header)
    if offset + declared > expected_size:
        if offset == 0:
            part_path.unlink(missing_ok=True)
        raise EndlessDataError(
            f"server announces {offset + declared} bytes, the signed size is {expected_size}"
        )
    return declared
