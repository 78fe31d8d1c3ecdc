"""The log-mel front end, written so it exports to plain ONNX ops and runs inside the model graph.

Why in the graph: training and every serving path (Triton, Lambda, devices) then compute identical
features from raw 16 kHz audio; no feature code can drift between them.

Why a Conv1d with a fixed DFT basis instead of ``torch.stft``: it exports to a Conv + MatMul that
onnxruntime runs about 2x faster than the ONNX STFT op, and matches torch to ~1e-5
(``../shared/notes/measured-facts.md``). Frames are not centred: frame ``i`` covers samples
``[i*hop, i*hop + n_fft)``, so a valid frame never reads padding — batching cannot change features.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms hop
N_MELS = 80


def _mel_filterbank(n_fft: int, n_mels: int, sample_rate: int) -> npt.NDArray[np.float32]:
    """HTK-style triangular mel filters, shape [n_fft // 2 + 1, n_mels]."""

    def hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        mel: npt.NDArray[np.float64] = 2595.0 * np.log10(1.0 + f / 700.0)
        return mel

    def mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        hz: npt.NDArray[np.float64] = 700.0 * (10 ** (m / 2595.0) - 1.0)
        return hz

    n_bins = n_fft // 2 + 1
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    mel_points = np.linspace(hz_to_mel(np.array(20.0)), hz_to_mel(np.array(7600.0)), n_mels + 2)
    hz_points = mel_to_hz(mel_points)
    bank = np.zeros((n_bins, n_mels), dtype=np.float32)
    for m in range(n_mels):
        left, centre, right = hz_points[m], hz_points[m + 1], hz_points[m + 2]
        up = (freqs - left) / (centre - left)
        down = (right - freqs) / (right - centre)
        bank[:, m] = np.maximum(0.0, np.minimum(up, down))
    return bank


class LogMelFrontEnd(nn.Module):
    """Raw waveform [B, T] -> per-utterance mean-normalized log-mel [B, frames, n_mels]."""

    # Buffers (set by register_buffer below): declared so the type checker sees Tensors, not the
    # ``Tensor | Module`` that nn.Module.__getattr__ promises.
    dft_basis: torch.Tensor
    mel_bank: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        window = torch.hann_window(N_FFT, periodic=True)
        n_bins = N_FFT // 2 + 1
        t = torch.arange(N_FFT, dtype=torch.float64)
        k = torch.arange(n_bins, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * k * t / N_FFT
        real = (torch.cos(angle) * window).float()
        imag = (-torch.sin(angle) * window).float()
        basis = torch.cat([real, imag], dim=0)[:, None, :]  # [2*bins, 1, n_fft]
        self.register_buffer("dft_basis", basis, persistent=False)
        self.register_buffer(
            "mel_bank",
            torch.from_numpy(_mel_filterbank(N_FFT, N_MELS, SAMPLE_RATE)),
            persistent=False,
        )
        self.n_bins = n_bins

    @staticmethod
    def frame_lengths(audio_lengths: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.div(audio_lengths - N_FFT, HOP, rounding_mode="floor") + 1, min=0)

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        spec = nn.functional.conv1d(audio[:, None, :], self.dft_basis, stride=HOP)  # [B, 2*bins, F]
        real, imag = spec[:, : self.n_bins], spec[:, self.n_bins :]
        power = real * real + imag * imag
        mel = torch.matmul(power.transpose(1, 2), self.mel_bank)  # [B, F, mels]
        logmel = torch.log(mel + 1e-6)
        lengths = self.frame_lengths(audio_lengths)
        mask = torch.arange(logmel.shape[1], device=audio.device)[None, :] < lengths[:, None]
        maskf = mask.to(logmel.dtype)[:, :, None]
        denom = torch.clamp(lengths, min=1).to(logmel.dtype)[:, None, None]
        mean = (logmel * maskf).sum(dim=1, keepdim=True) / denom
        return (logmel - mean) * maskf, lengths
