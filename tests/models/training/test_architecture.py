"""The model's shape contract and batch invariance (Triton batching must not change transcripts)."""

from __future__ import annotations

import pytest
import torch

from models.training.architecture import (
    SUBSAMPLING,
    AcousticModel,
    ModelConfig,
    reverse_within_length,
)

TINY = ModelConfig(name="tiny", tdnn_channels=32, lstm_hidden=16, lstm_layers=1, attention_heads=2)


def test_reverse_within_length_keeps_padding_in_place() -> None:
    x = torch.arange(10, dtype=torch.float32).reshape(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2, 1, 0, 3, 4]
    assert out[1, :, 0].tolist() == [9, 8, 7, 6, 5]


@pytest.mark.parametrize("kind", ["hybrid", "cnn_rnn"])
def test_padding_in_a_batch_does_not_change_a_clips_output(kind: str) -> None:
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(**{**TINY.to_dict(), "kind": kind})).eval()  # type: ignore[arg-type]
    short = torch.randn(1, 12_000) * 0.1
    long = torch.randn(1, 30_000) * 0.1
    batch = torch.zeros(2, 30_000)
    batch[0, :12_000] = short[0]
    batch[1] = long[0]
    with torch.no_grad():
        alone, alone_len = model(short, torch.tensor([12_000]))
        batched, batched_len = model(batch, torch.tensor([12_000, 30_000]))
    n = int(alone_len[0])
    assert int(batched_len[0]) == n
    torch.testing.assert_close(batched[0, :n], alone[0, :n], atol=1e-5, rtol=1e-4)


def test_output_frames_follow_the_30ms_frame_shift() -> None:
    model = AcousticModel(TINY).eval()
    samples = 16_000 * 2
    with torch.no_grad():
        log_probs, lengths = model(torch.zeros(1, samples), torch.tensor([samples]))
    frames_10ms = (samples - 400) // 160 + 1
    assert int(lengths[0]) == frames_10ms // SUBSAMPLING
    assert log_probs.shape[-1] == TINY.vocab_size
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones_like(log_probs[..., 0]), atol=1e-4)
