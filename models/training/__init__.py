"""Training code (PyTorch). Never imported by serving paths."""
