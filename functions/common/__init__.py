"""Helpers every cloud function shares: lazily created AWS clients, lenient S3 event parsing, error
records and transcript storage.

Everything here imports only boto3, pydantic and ``models.runtime`` (never torch), and nothing heavy
happens at import time, so a function's cold start pays only for what it uses.
"""
