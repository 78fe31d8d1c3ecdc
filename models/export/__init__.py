"""ONNX export and INT8 quantization (PyTorch + onnxruntime tooling). Never imported by serving paths."""
