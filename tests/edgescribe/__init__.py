"""Tests for the ``edgescribe`` CLI package."""
