"""Function limits come from settings and may only be lowered by the environment."""

from __future__ import annotations

import pytest

from edgescribe import settings
from functions.common.environment import input_limits, resource_name


def test_limits_default_to_the_platform_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESCRIBE_MAX_UPLOAD_BYTES", raising=False)
    monkeypatch.delenv("EDGESCRIBE_MAX_AUDIO_SECONDS", raising=False)

    limits = input_limits()
    assert limits.max_upload_bytes == settings.MAX_UPLOAD_BYTES
    assert limits.max_audio_seconds == settings.MAX_AUDIO_SECONDS


def test_environment_can_lower_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESCRIBE_MAX_UPLOAD_BYTES", "1000")

    assert input_limits().max_upload_bytes == 1000


def test_environment_cannot_raise_a_limit_above_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESCRIBE_MAX_UPLOAD_BYTES", str(50 * 1024**3))

    assert input_limits().max_upload_bytes == settings.MAX_UPLOAD_BYTES


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_nonsense_limit_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EDGESCRIBE_MAX_AUDIO_SECONDS", value)

    with pytest.raises(ValueError, match="EDGESCRIBE_MAX_AUDIO_SECONDS"):
        input_limits()


def test_resource_names_follow_the_stack_when_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSCRIPTS_BUCKET", raising=False)
    monkeypatch.setenv("EDGESCRIBE_STACK", "prod")

    assert resource_name("TRANSCRIPTS_BUCKET") == settings.ResourceNames("prod").transcripts_bucket


def test_explicit_resource_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIPTS_BUCKET", "custom-bucket")

    assert resource_name("TRANSCRIPTS_BUCKET") == "custom-bucket"
