"""The EdgeScribe acoustic model: TDNN -> subsampling -> BiLSTM -> self-attention -> CTC.

Why this shape: TDNN (dilated 1-D convolutions) learns local spectro-temporal patterns cheaply; a
stride-3 convolution brings frames to 30 ms so the recurrent part runs 3x fewer steps; the
bidirectional LSTM carries long-range context; one self-attention block lets every frame look at
the whole utterance; CTC over characters needs no alignments.

Batch invariance (why the odd-looking parts): every layer masks padded frames to zero, and the
backward LSTM direction reverses each sequence *within its own length* (a gather), so valid frames
never see padding. A clip therefore gets the same output alone or in a Triton batch.

ONNX traps avoided (``../shared/notes/measured-facts.md``): attention is hand-written (qkv Linear +
``scaled_dot_product_attention``) because ``nn.MultiheadAttention`` bakes the sequence length into a
Reshape; the LSTM exports with the legacy exporter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.training.frontend import HOP, N_MELS, SAMPLE_RATE, LogMelFrontEnd

SUBSAMPLING = 3
#: Seconds per output frame (10 ms hop x stride-3 subsampling): the manifest's ``frame_shift_seconds``.
FRAME_SHIFT_SECONDS = HOP * SUBSAMPLING / SAMPLE_RATE


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of one model variant; ``edge`` and ``cloud`` come from the same code."""

    name: str = "edge"
    vocab_size: int = 29
    tdnn_channels: int = 256
    lstm_hidden: int = 192
    lstm_layers: int = 2
    attention_heads: int = 4
    dropout: float = 0.1
    kind: str = "hybrid"  # "hybrid" (TDNN+BiLSTM+attention) or "cnn_rnn" (ablation baseline)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


CONFIGS = {
    "edge": ModelConfig(),
    "cloud": ModelConfig(
        name="cloud", tdnn_channels=384, lstm_hidden=320, lstm_layers=3, attention_heads=8
    ),
    "cnn_rnn": ModelConfig(name="cnn_rnn", kind="cnn_rnn"),
    # a few thousand parameters: for tests of the training machinery (DDP, SageMaker, pruning)
    "tiny": ModelConfig(
        name="tiny", tdnn_channels=32, lstm_hidden=16, lstm_layers=1, attention_heads=2
    ),
}


def _mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` [B, T, C] within its valid length; padding stays at the end."""
    frames = x.shape[1]
    t = torch.arange(frames, device=x.device)[None, :]
    index = lengths[:, None] - 1 - t
    index = torch.where(index < 0, t, index)  # padding positions map to themselves
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


class TdnnLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2
        )
        self.norm = nn.LayerNorm(c_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, maskf: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out: torch.Tensor = self.dropout(self.norm(y)) * maskf
        return out


class BiLstmLayer(nn.Module):
    """Bidirectional LSTM built from two unidirectional ones, batch-invariant (see module doc)."""

    def __init__(self, c_in: int, hidden: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(c_in, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(c_in, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        fwd, _ = self.forward_lstm(x)
        bwd, _ = self.backward_lstm(reverse_within_length(x, lengths))
        return torch.cat([fwd, reverse_within_length(bwd, lengths)], dim=2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        head_dim = x.shape[2] // self.heads
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=2)
        q = q.reshape(b, -1, self.heads, head_dim).transpose(1, 2)
        k = k.reshape(b, -1, self.heads, head_dim).transpose(1, 2)
        v = v.reshape(b, -1, self.heads, head_dim).transpose(1, 2)
        attn = nn.functional.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )
        y = attn.transpose(1, 2).reshape(b, -1, self.heads * head_dim)
        out: torch.Tensor = x + self.out(y)
        return out


class SpecAugment(nn.Module):
    """Time and frequency masking on features, active in training only."""

    def __init__(
        self, freq_masks: int = 2, freq_width: int = 12, time_masks: int = 4, time_width: int = 25
    ) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        b, frames, bins = feats.shape
        out = feats.clone()
        for i in range(b):
            for _ in range(self.freq_masks):
                w = int(torch.randint(0, self.freq_width + 1, ()))
                f0 = int(torch.randint(0, max(1, bins - w), ()))
                out[i, :, f0 : f0 + w] = 0
            for _ in range(self.time_masks):
                w = int(torch.randint(0, self.time_width + 1, ()))
                t0 = int(torch.randint(0, max(1, frames - w), ()))
                out[i, t0 : t0 + w, :] = 0
        return out


class AcousticModel(nn.Module):
    """Waveform in, CTC log-probabilities out (the ONNX contract's inputs and outputs)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, h = config.tdnn_channels, config.lstm_hidden
        self.frontend = LogMelFrontEnd()
        self.specaugment = SpecAugment()
        if config.kind == "hybrid":
            self.tdnn = nn.ModuleList(
                [
                    TdnnLayer(N_MELS, c, 5, 1, config.dropout),
                    TdnnLayer(c, c, 3, 2, config.dropout),
                    TdnnLayer(c, c, 3, 3, config.dropout),
                ]
            )
        else:  # CNN-RNN baseline: plain (undilated) convolutions, no attention
            self.tdnn = nn.ModuleList(
                [
                    TdnnLayer(N_MELS, c, 3, 1, config.dropout),
                    TdnnLayer(c, c, 3, 1, config.dropout),
                ]
            )
        self.subsample = nn.Conv1d(c, c, SUBSAMPLING, stride=SUBSAMPLING)
        self.lstms = nn.ModuleList(
            [BiLstmLayer(c if i == 0 else 2 * h, h) for i in range(config.lstm_layers)]
        )
        self.lstm_dropout = nn.Dropout(config.dropout)
        self.attention = (
            SelfAttention(2 * h, config.attention_heads, config.dropout)
            if config.kind == "hybrid"
            else None
        )
        self.head = nn.Linear(2 * h, config.vocab_size)

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, lengths = self.frontend(audio, audio_lengths)
        feats = self.specaugment(feats)
        maskf = _mask(lengths, feats.shape[1]).to(feats.dtype)[:, :, None]
        x = feats
        for layer in self.tdnn:
            x = layer(x, maskf)
        x = torch.relu(self.subsample(x.transpose(1, 2))).transpose(1, 2)
        lengths = torch.div(lengths, SUBSAMPLING, rounding_mode="floor")
        mask = _mask(lengths, x.shape[1])
        maskf = mask.to(x.dtype)[:, :, None]
        x = x * maskf
        for lstm in self.lstms:
            x = self.lstm_dropout(lstm(x, lengths)) * maskf
        if self.attention is not None:
            x = self.attention(x, mask) * maskf
        log_probs = torch.log_softmax(self.head(x), dim=-1)
        return log_probs, lengths
