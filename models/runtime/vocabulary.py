"""The character vocabulary shared by training, the ONNX graph's output and every decoder.

Index 0 is the CTC blank. The order is part of the model artifact contract: a manifest carries its
vocabulary, and decoders read it from there rather than from this constant, so a future model may
change it without breaking old devices.
"""

from __future__ import annotations

import re
import unicodedata

BLANK = "<blank>"
#: blank, space, apostrophe, a-z (29 symbols).
DEFAULT_VOCABULARY: tuple[str, ...] = (BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz")

_DIGIT_WORDS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}


def normalize_text(text: str) -> str:
    """Lowercase, strip accents and punctuation (apostrophes kept), collapse spaces.

    Digits are spelled one by one ("42" -> "four two"): the acoustic model emits letters only, and
    scoring both sides with this function keeps CER honest.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    ascii_text = ascii_text.replace("\u2019", "'").replace("`", "'")
    # ``\d`` is every Unicode decimal digit (Limbu, Arabic-Indic, ...): spell each by its value
    ascii_text = re.sub(
        r"\d", lambda m: f" {_DIGIT_WORDS[str(unicodedata.digit(m.group(0)))]} ", ascii_text
    )
    ascii_text = re.sub(r"[^a-z' ]+", " ", ascii_text)
    ascii_text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", ascii_text)
    return " ".join(ascii_text.split())


def encode(text: str, vocabulary: tuple[str, ...] = DEFAULT_VOCABULARY) -> list[int]:
    """Token ids of a normalized text (unknown characters are dropped)."""
    index = {symbol: i for i, symbol in enumerate(vocabulary)}
    return [index[c] for c in normalize_text(text) if c in index]
