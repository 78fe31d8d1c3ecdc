"""A short training run on fixed data lowers the CTC loss (the trainer's loop really learns)."""

from __future__ import annotations

import torch

from models.runtime.vocabulary import encode
from models.training.architecture import AcousticModel, ModelConfig


def test_a_few_steps_of_ctc_training_lower_the_loss() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    config = ModelConfig(
        name="tiny", tdnn_channels=32, lstm_hidden=32, lstm_layers=1, attention_heads=2, dropout=0.0
    )
    model = AcousticModel(config)
    model.specaugment.time_masks = 0
    model.specaugment.freq_masks = 0
    audio = torch.randn(2, 16_000) * 0.1
    lengths = torch.tensor([16_000, 16_000])
    tokens = [encode("yes"), encode("no")]
    targets = torch.tensor([t for row in tokens for t in row])
    target_lengths = torch.tensor([len(row) for row in tokens])
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_value() -> torch.Tensor:
        log_probs, out_lengths = model(audio, lengths)
        return ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)

    first = float(loss_value())
    for _ in range(40):
        loss = loss_value()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss_value()) < 0.5 * first
