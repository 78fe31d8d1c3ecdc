"""Tests for the ``models`` package (mirrors ``models/``)."""
