"""The in-process onnxruntime backend: padded batches come back trimmed, per utterance, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgescribe.samples import list_samples
from models.runtime.audio import decode_audio
from models.runtime.backend import InferenceBackend, OnnxRuntimeBackend, pad_batch
from models.runtime.session import AcousticModel


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(AcousticModel.load(model_dir), engine="onnxruntime-edge")


def test_backend_satisfies_the_protocol_and_names_its_model(backend: OnnxRuntimeBackend) -> None:
    assert isinstance(backend, InferenceBackend)
    assert backend.engine == "onnxruntime-edge"
    manifest = backend.acoustic_model.manifest
    assert (backend.model.name, backend.model.version) == (manifest.name, manifest.version)


def test_padding_in_a_batch_does_not_leak_into_shorter_utterances(
    backend: OnnxRuntimeBackend,
) -> None:
    clips = [decode_audio(s.path).samples for s in list_samples()[:3]]
    alone = [backend.infer([clip])[0] for clip in clips]
    together = backend.infer(clips)

    assert len(together) == len(clips)
    for single, batched in zip(alone, together, strict=True):
        assert single.shape == batched.shape  # trimmed to the utterance's own frames
        # INT8 dynamic quantisation picks activation scales per batch, so values differ a little;
        # the decoded symbols must not.
        assert (single.argmax(-1) == batched.argmax(-1)).mean() >= 0.95


def test_batches_larger_than_the_cap_are_split_and_kept_in_order(model_dir: Path) -> None:
    backend = OnnxRuntimeBackend(AcousticModel.load(model_dir), max_batch_size=2)
    waveforms = [np.zeros(16_000 * seconds, dtype=np.float32) for seconds in (1, 3, 2, 5, 4)]
    frame_shift = backend.acoustic_model.manifest.frame_shift_seconds

    outputs = backend.infer(waveforms)

    frames = [o.shape[0] for o in outputs]
    assert frames == pytest.approx([s / frame_shift for s in (1, 3, 2, 5, 4)], abs=2)


def test_empty_batch_and_tiny_inputs_do_not_crash(backend: OnnxRuntimeBackend) -> None:
    assert backend.infer([]) == []
    outputs = backend.infer([np.zeros(0, np.float32), np.zeros(10, np.float32)])
    assert [o.ndim for o in outputs] == [2, 2]


def test_pad_batch_zero_pads_on_the_right() -> None:
    audio, lengths = pad_batch([np.ones(2000, np.float32), np.ones(3000, np.float32)])
    assert audio.shape == (2, 3000)
    assert lengths.tolist() == [2000, 3000]
    assert audio[0, :2000].all()
    assert not audio[0, 2000:].any()
