"""The A/B model slots and the pointer that says which one runs.

Layout under ``<state_dir>/slots``::

    a/model.onnx  a/manifest.json      one complete model version per slot
    b/model.onnx  b/manifest.json
    current                            "a" or "b": the active slot

Invariants:

* The **active slot is never written**. Updates are staged into the inactive slot, which holds the
  previous model until then — so the device always keeps one known-good model to fall back to.
* Staging builds ``<slot>.staging/`` completely (bytes fsynced, hashed) and renames it into place;
  a crash leaves a ``*.staging`` directory that ``clean_debris`` removes, never a half slot.
* ``current`` is replaced atomically (temp + fsync + ``os.replace`` + fsync of the directory), so
  after a power cut it names the old slot or the new one — that rename *is* the switch.
* A slot is "valid" only if its manifest parses and its model file matches the manifest's size and
  sha256: a slot corrupted on disk is never chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge.fsutil import (
    atomic_write_bytes,
    atomic_write_text,
    copy_durably,
    fsync_directory,
    remove_stale_temporaries,
    remove_tree,
)
from edge.verification import check_length, check_sha256
from models.runtime.manifest import ModelManifest

SLOT_NAMES = ("a", "b")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


class SlotError(Exception):
    """A slot does not hold a usable model (reason in the message)."""


class Slots:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, slot: str) -> Path:
        if slot not in SLOT_NAMES:
            raise SlotError(f"unknown slot {slot!r}")
        return self.root / slot

    @property
    def pointer(self) -> Path:
        return self.root / "current"

    # -- reading --------------------------------------------------------------------------------
    def active(self) -> str | None:
        """The slot the pointer names, or None if the pointer is missing or unreadable."""
        try:
            value = self.pointer.read_text().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return value if value in SLOT_NAMES else None

    @staticmethod
    def other(slot: str | None) -> str:
        return "b" if slot == "a" else "a"

    def manifest(self, slot: str) -> ModelManifest:
        try:
            return ModelManifest.load(self.path(slot) / MANIFEST_FILE)
        except FileNotFoundError as exc:
            raise SlotError(f"slot {slot} has no manifest") from exc
        except ValueError as exc:
            raise SlotError(f"slot {slot} manifest is corrupt: {exc}") from exc

    def validate(self, slot: str) -> ModelManifest:
        """The slot's manifest, if its model bytes match it; ``SlotError`` otherwise."""
        manifest = self.manifest(slot)
        model = self.path(slot) / MODEL_FILE
        if not model.is_file():
            raise SlotError(f"slot {slot} has no model file")
        try:
            check_length(model, manifest)
            check_sha256(model, manifest)
        except Exception as exc:
            raise SlotError(f"slot {slot} is corrupt: {exc}") from exc
        return manifest

    def holds(self, slot: str, sha256: str) -> bool:
        try:
            return self.validate(slot).sha256 == sha256
        except SlotError:
            return False

    # -- writing --------------------------------------------------------------------------------
    def stage(
        self,
        slot: str,
        model_file: Path,
        manifest: ModelManifest,
        *,
        midway: Callable[[], None] | None = None,
    ) -> None:
        """Install ``model_file`` + ``manifest`` as the complete content of the (inactive) slot."""
        if slot == self.active():
            raise SlotError(f"refusing to stage into the active slot {slot}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{slot}.staging"
        remove_tree(staging)
        staging.mkdir()
        copy_durably(model_file, staging / MODEL_FILE)
        if midway is not None:
            midway()
        atomic_write_text(staging / MANIFEST_FILE, manifest.to_json())
        fsync_directory(staging)
        check_length(staging / MODEL_FILE, manifest)
        check_sha256(staging / MODEL_FILE, manifest)  # the copy, not just the download, is right
        target = self.path(slot)
        remove_tree(target)
        staging.rename(target)
        fsync_directory(self.root)

    def switch(self, slot: str, *, midway: Callable[[], None] | None = None) -> None:
        """Make ``slot`` the active one: one atomic, durable rename."""
        self.path(slot)
        atomic_write_bytes(self.pointer, f"{slot}\n".encode(), before_replace=midway)

    def clean_debris(self) -> None:
        """Remove what a crash can leave: ``*.staging`` directories, a ``current.tmp``."""
        if not self.root.is_dir():
            return
        for staging in self.root.glob("*.staging"):
            remove_tree(staging)
        remove_stale_temporaries(self.root)
