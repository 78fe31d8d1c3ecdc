"""Writes a transcript in every format to ``transcripts/<tenant>/<id>.{txt,srt,vtt,json}``.

The JSON is written LAST: it is the "done" marker. Anyone waiting for a transcript (the API's job
status, the demo, a client polling S3) waits for the ``.json``, and by then the other formats exist.

``create_only`` makes the JSON write conditional (``If-None-Match: *``): when a transcript is
already stored under that id, ``TranscriptAlreadyStoredError`` is raised instead of overwriting it
(the API's offline-transcript uploads use this: a device must never replace a stored transcript).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from models.runtime import storage_layout, writers

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from models.runtime.transcript import Transcript

CONTENT_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}
TranscriptFormat = Literal["txt", "srt", "vtt", "json"]
#: Order of writes; ``json`` last (see module docstring).
WRITE_ORDER: tuple[TranscriptFormat, ...] = ("txt", "srt", "vtt", "json")
_PRECONDITION_FAILED = ("PreconditionFailed", "412")


class TranscriptAlreadyStoredError(Exception):
    """A ``create_only`` write found a transcript already stored under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a transcript is already stored at {key}")
        self.key = key


def write_transcript(
    s3: S3Client,
    bucket: str,
    tenant: str,
    recording_id: str,
    transcript: Transcript,
    *,
    metadata: dict[str, str] | None = None,
    create_only: bool = False,
    formats: Sequence[TranscriptFormat] = WRITE_ORDER,
) -> dict[str, str]:
    """Store ``formats`` (every format unless told otherwise, in ``WRITE_ORDER``); return
    ``{format: key}``. ``metadata`` goes on each object (ASCII). With ``create_only`` the JSON is
    written only if absent (``TranscriptAlreadyStoredError`` otherwise; see module docstring)."""
    keys: dict[str, str] = {}
    for fmt in (f for f in WRITE_ORDER if f in formats):
        key = storage_layout.transcript_key(tenant, recording_id, fmt)
        body = writers.render(transcript, fmt).encode("utf-8")
        if create_only and fmt == "json":
            try:
                s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ContentType=CONTENT_TYPES[fmt],
                    Metadata=metadata or {},
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _PRECONDITION_FAILED:
                    raise TranscriptAlreadyStoredError(key) from exc
                raise
        else:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=CONTENT_TYPES[fmt],
                Metadata=metadata or {},
            )
        keys[fmt] = key
    return keys
