"""Published model versions, from the models bucket into onnxruntime: the one way a function loads one.

Two parts of the cloud functions run models that are not baked into their image: the shadow runner
(``functions.learning.shadow``: the candidate on the shadow channel) and the channel-following
transcriber (``functions.inference.channel_following``: what ``stable`` points at). Both call
:func:`load_published_model`, which applies these checks in order and stops at the first failure:

1. ``manifest.json`` of the version (``storage_layout.manifest_key``) is at most
   ``MAX_MANIFEST_BYTES``, parses as a ``ModelManifest``, names exactly the requested name and
   version (a manifest copied to the wrong key is refused), and its ``file`` is a plain file name;
2. ``model.onnx`` (``storage_layout.model_key``) is as large as the manifest says, checked from
   ``ContentLength`` *before* the body is read (an oversize object never fills the disk);
3. ``models.runtime.artifacts`` verifies size and sha256 of the downloaded bytes before
   onnxruntime parses a byte of them (a truncated or swapped object never runs).

Both files go into a fresh per-version temporary folder; any failure removes it, so a half-written
model is never left behind for a later load to trust. Signatures are *not* checked: functions read
the models bucket under their own IAM role, and the bytes are bound to the manifest by sha256
(devices, which fetch through pre-signed URLs, verify signatures as well).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError
from pydantic import ValidationError

from models.runtime import storage_layout
from models.runtime.artifacts import MANIFEST_FILE
from models.runtime.manifest import ModelManifest
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

    from models.runtime.session import AcousticModel
    from models.runtime.transcriber import Transcriber
    from models.runtime.transcript import Engine

#: A manifest is a few kilobytes; anything this large is not one.
MAX_MANIFEST_BYTES: Final = 1 << 20
_DOWNLOAD_BLOCK: Final = 1 << 20
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})


class PublishedModelError(RuntimeError):
    """A published version cannot be used: missing, unreadable, oversize, or not what its manifest
    says (the message names the object and the reason)."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified published version, loaded into onnxruntime; its files live in ``folder``."""

    model: ModelRef
    acoustic_model: AcousticModel
    folder: Path

    def transcriber(self, engine: Engine = "onnxruntime-cloud") -> Transcriber:
        """A transcriber over this model alone (in-process onnxruntime)."""
        from models.runtime.backend import OnnxRuntimeBackend
        from models.runtime.transcriber import Transcriber

        backend = OnnxRuntimeBackend(self.acoustic_model, engine=engine)
        return Transcriber(backend, self.acoustic_model.manifest)

    def remove_files(self) -> None:
        """Delete the downloaded files. The loaded session keeps working: onnxruntime read the
        model into memory when the session was built, so requests still running on it finish."""
        shutil.rmtree(self.folder, ignore_errors=True)


def load_published_model(
    s3: S3Client,
    bucket: str,
    model: ModelRef,
    *,
    work_dir: Path | None = None,
    intra_op_threads: int = 1,
    purpose: str = "published",
) -> LoadedModel:
    """Download ``model`` from ``bucket`` into a new temporary folder, verify it, and load it.

    ``purpose`` only names the folder (``edgescribe-<purpose>-<name>-v<version>-*``), so an operator
    looking at a container's disk sees which part of the function put a model there.
    """
    from models.runtime.session import AcousticModel

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(
        tempfile.mkdtemp(
            prefix=f"edgescribe-{purpose}-{model.name}-v{model.version}-", dir=work_dir
        )
    )
    try:
        download_published_model(s3, bucket, model, folder)
        # Verifies size and sha256 against the manifest before onnxruntime parses the bytes.
        acoustic_model = AcousticModel.load(folder, intra_op_threads=intra_op_threads)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return LoadedModel(model=model, acoustic_model=acoustic_model, folder=folder)


def download_published_model(
    s3: S3Client, bucket: str, model: ModelRef, folder: Path
) -> ModelManifest:
    """Write ``model``'s manifest and model file into ``folder`` (checks 1 and 2 of the module doc).

    Does not verify the sha256: :func:`models.runtime.artifacts.load_model_artifact` does, on the
    folder, right before anything parses the bytes.
    """
    manifest_key = storage_layout.manifest_key(model.name, model.version)
    response = _get(s3, bucket, manifest_key)
    try:
        body = response["Body"].read(MAX_MANIFEST_BYTES + 1)
    finally:
        response["Body"].close()
    if len(body) > MAX_MANIFEST_BYTES:
        raise PublishedModelError(f"{manifest_key} is over {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = ModelManifest.from_json(body)
    except (ValidationError, ValueError) as exc:
        raise PublishedModelError(f"{manifest_key} is not a valid manifest: {exc}") from exc
    if (manifest.name, manifest.version) != (model.name, model.version):
        raise PublishedModelError(
            f"{manifest_key} describes {manifest.name} v{manifest.version}, "
            f"not {model.name} v{model.version}"
        )
    if Path(manifest.file).name != manifest.file or manifest.file in ("", ".", ".."):
        raise PublishedModelError(f"{manifest_key}: 'file' must be a plain file name")
    (folder / MANIFEST_FILE).write_bytes(body)

    model_key = storage_layout.model_key(model.name, model.version)
    response = _get(s3, bucket, model_key)
    stream = response["Body"]
    size = int(response.get("ContentLength", 0))
    if size != manifest.size:
        stream.close()
        raise PublishedModelError(
            f"{model_key} holds {size} bytes, but its manifest says {manifest.size}"
        )
    with (folder / manifest.file).open("wb") as handle:
        try:
            for block in iter(lambda: stream.read(_DOWNLOAD_BLOCK), b""):
                handle.write(block)
        finally:
            stream.close()
    return manifest


def _get(s3: S3Client, bucket: str, key: str) -> GetObjectOutputTypeDef:
    """``GetObject``, with a missing object named as such (other storage errors propagate)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            raise PublishedModelError(f"{key} is not in bucket {bucket} ({code})") from exc
        raise
