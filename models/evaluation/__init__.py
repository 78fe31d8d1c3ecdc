"""Measuring the acoustic model: CER/WER on real, noisy and held-out-voice speech, a peer, speed.

``benchmark`` runs everything from one command (``edgescribe bench model``) and writes
``docs/benchmarks/model.{json,md}``; ``model_card`` turns that JSON into ``docs/model-card.md``, so
every number the card states comes from one rerunnable benchmark run. Nothing here imports torch:
the benchmark measures the exported ONNX models through the same runtime the product uses.
"""
