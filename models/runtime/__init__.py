"""Torch-free runtime: what Lambdas, Triton's python backend and edge devices import.

Rule: nothing under this package imports torch (enforced by ruff's banned-api and a test).
"""
