"""Text normalization shared by training, scoring and the quality guardrails."""

from __future__ import annotations

from models.runtime.vocabulary import normalize_text


def test_digits_of_any_script_are_spelled_not_a_crash() -> None:
    """``\\d`` matches every Unicode decimal digit; a Limbu zero once raised KeyError."""
    assert normalize_text("call \u1946 42 \u0663") == "call zero four two three"
