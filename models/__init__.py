"""The EdgeScribe acoustic model.

`models.runtime` is the torch-free serving side (audio, ONNX session, CTC decoding, transcript and
manifest schemas, storage layout). Everything else in this package (training, export, quantization)
may import torch and must never be imported by a Lambda or a device.
"""
