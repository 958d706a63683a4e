"""``config/channels.yaml`` as typed settings: one section per channel kind, every key known
(an unknown key such as ``backnd`` is refused, never ignored), each backend checked against its
kind, validated whole and cached. Errors read ``channels.<kind>.<key> (line N): message``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contact_channels.base import CHANNEL_KINDS
from contact_channels.registry import BACKENDS, LOCAL_MEDIA, PROVIDER_FOR_KIND
from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    read_config_file,
    validate_yaml,
)

ROOT = ("channels",)  # every path in this file's errors starts with it: channels.sms.backend
DEFAULT_MAX_SMS_SEGMENTS = 3


class ChannelsConfigError(ConfigFileError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RateLimit(_Strict):
    """A token bucket shared by every dispatch worker (contact_channels/ratelimit.py)."""

    per_second: float = Field(gt=0)
    burst: float | None = Field(default=None, ge=1)
    store: Literal["file", "redis", "local"] = "file"


class Section(_Strict):
    """What every kind may set: its backend, a connection, and the dispatcher's tuning."""

    KIND: ClassVar[str] = ""
    backend: str = "auto"
    # The Airflow connection of the provider or the drop location; credentials stay there.
    conn_id: str | None = Field(default=None, min_length=1)
    concurrency: int | None = Field(default=None, ge=1, le=1000)  # sender threads per task
    group_size: int | None = Field(default=None, ge=1, le=1000)  # contacts claimed per transaction

    @classmethod
    def backends(cls) -> tuple[str, ...]:
        provider = PROVIDER_FOR_KIND.get(cls.KIND, (None,))[0]
        medium = LOCAL_MEDIA.get(cls.KIND)
        return tuple(b for b in ("auto", "outbox", provider, medium) if b)

    @field_validator("backend")
    @classmethod
    def _backend_fits_kind(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(
                f"unknown backend {value!r}; expected one of {', '.join(cls.backends())}"
            )
        if value not in cls.backends():
            raise ValueError(
                f"{value!r} cannot send {cls.KIND} messages; expected one of "
                f"{', '.join(cls.backends())}"
            )
        return value


class ProviderSection(Section):
    rate_limit: RateLimit | None = None


class SmsSection(ProviderSection):
    KIND = "sms"
    max_segments: int | None = Field(default=None, ge=1)  # billed segments an SMS may need
    help_text: str | None = Field(default=None, min_length=1)  # replies to HELP, STOP, START
    stop_text: str | None = Field(default=None, min_length=1)
    start_text: str | None = Field(default=None, min_length=1)


class EmailSection(ProviderSection):
    KIND = "email"


class CallSection(Section):
    KIND = "call"


class _DropSection(Section):
    drop: str | None = Field(default=None, min_length=1)  # file://, s3://, sftp://...


class LetterSection(_DropSection):
    KIND = "letter"
    mail_house: str | None = Field(default=None, min_length=1)


class AgencySection(_DropSection):
    KIND = "agency"


class LegalSection(_DropSection):
    KIND = "legal"


class ChannelsConfig(_Strict):
    sms: SmsSection = SmsSection()
    email: EmailSection = EmailSection()
    call: CallSection = CallSection()
    letter: LetterSection = LetterSection()
    agency: AgencySection = AgencySection()
    legal: LegalSection = LegalSection()

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `sms:` with nothing under it means the defaults, as it always has.
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    def section(self, kind: str) -> dict[str, Any]:
        """The kind's settings as a plain dict of what is set (for contact_channels, which
        must not import outreach)."""
        if kind not in CHANNEL_KINDS:
            raise ValueError(
                f"unknown channel kind {kind!r}; expected one of {', '.join(CHANNEL_KINDS)}"
            )
        model: Section = getattr(self, kind)
        return model.model_dump(exclude_none=True)


assert set(ChannelsConfig.model_fields) == set(CHANNEL_KINDS)


def channels_path(config_dir: Path | None = None) -> Path:
    return (config_dir or settings.config_dir()) / "channels.yaml"


def check_channels_text(text: str) -> tuple[ChannelsConfig | None, list[ConfigError]]:
    """Parse and validate channels.yaml; errors name their YAML path (``channels.sms...``)."""
    model, errors, _ = validate_yaml(text, ChannelsConfig, root=ROOT)
    return model, errors


def parse_channels(text: str, source: str) -> ChannelsConfig:
    model, errors = check_channels_text(text)
    if model is None:
        raise ChannelsConfigError(source, errors)
    return model


def channels_config(config_dir: Path | None = None) -> ChannelsConfig:
    """The settings in force, validated whole (one broken section stops every kind); the
    defaults when the file is absent."""
    return read_config_file(channels_path(config_dir), parse_channels, ChannelsConfig)
