"""Candidates are exported like releases, from the committed checkpoint of the released model."""

from __future__ import annotations

from pathlib import Path

from models.learning.candidate import export_candidate, load_checkpoint
from models.learning.clips import load_clips, replay_train
from models.runtime.artifacts import load_model_artifact, released_checkpoint, released_model_dir
from models.runtime.audio import decode_audio
from models.runtime.scoring import cer
from models.runtime.transcriber import Transcriber


def test_the_committed_checkpoint_exports_to_the_released_models_transcripts(
    tmp_path: Path,
) -> None:
    """If the checkpoint drifted from the released model, every fine-tune would start elsewhere."""
    calibration = [decode_audio(clip.path).samples for clip in replay_train()]
    manifest = export_candidate(
        load_checkpoint(released_checkpoint()),
        tmp_path / "candidate",
        name="edgescribe-edge",
        version=2,
        parent_version=1,
        calibration=calibration,
        training_data={"job_id": "retrain-test"},
    )
    artifact = load_model_artifact(tmp_path / "candidate")
    assert artifact.manifest.sha256 == manifest.sha256
    assert (manifest.version, manifest.parent_version) == (2, 1)
    assert manifest.quantization == "int8-static"
    assert manifest.training_data["job_id"] == "retrain-test"
    assert (
        manifest.size
        < 0.35 * (released_model_dir("edgescribe-cloud") / "model.onnx").stat().st_size
    )

    released = Transcriber.from_model_dir(released_model_dir())
    candidate = Transcriber.from_model_dir(tmp_path / "candidate")
    clips = load_clips("domain_eval")
    disagreement = [
        cer(
            released.transcribe(decode_audio(clip.path), transcript_id="a").text,
            candidate.transcribe(decode_audio(clip.path), transcript_id="b").text,
        )
        for clip in clips
    ]
    # float16 weights and a re-run calibration: near-identical, not bit-identical, transcripts
    assert sum(disagreement) / len(disagreement) < 0.08, disagreement
