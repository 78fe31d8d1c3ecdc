"""Writes a transcript in every format to ``transcripts/<tenant>/<id>.{txt,srt,vtt,json}``.

The JSON is written LAST: it is the "done" marker. Anyone waiting for a transcript (the API's job
status, the demo, a client polling S3) waits for the ``.json``, and by then the other formats exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

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


def write_transcript(
    s3: S3Client,
    bucket: str,
    tenant: str,
    recording_id: str,
    transcript: Transcript,
    *,
    metadata: dict[str, str] | None = None,
) -> dict[str, str]:
    """Store every format; return ``{format: key}``. ``metadata`` goes on each object (ASCII)."""
    keys: dict[str, str] = {}
    for fmt in WRITE_ORDER:
        key = storage_layout.transcript_key(tenant, recording_id, fmt)
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=writers.render(transcript, fmt).encode("utf-8"),
            ContentType=CONTENT_TYPES[fmt],
            Metadata=metadata or {},
        )
        keys[fmt] = key
    return keys
