"""Tests for the torch-free runtime (``models/runtime``)."""
