"""The channel-kind registry's plugin entries (decision 008): every "module:attribute" it names
resolves to what the kind needs, since import-linter cannot see these strings."""

from __future__ import annotations

import inspect

import pytest

from contact_channels.base import CHANNEL_KINDS
from outreach.planning.kinds import CHANNELS, KINDS, ChannelHooks, resolve


def test_the_registry_lists_every_kind_contact_channels_can_build_in_the_same_order() -> None:
    assert CHANNELS == CHANNEL_KINDS
    assert set(KINDS) == {"sms", "email", "call", "letter", "agency", "legal"}


@pytest.mark.parametrize("kind", [k for k in KINDS.values() if k.hooks], ids=lambda k: k.name)
def test_each_own_medium_names_hooks_that_exist_and_are_channel_hooks(kind) -> None:  # type: ignore[no-untyped-def]
    assert kind.medium == "own"
    hooks = resolve(kind.hooks)
    assert inspect.isclass(hooks) and issubclass(hooks, ChannelHooks)
    assert hooks is not ChannelHooks


@pytest.mark.parametrize(
    "kind", [k for k in KINDS.values() if k.closing], ids=lambda k: k.name
)
def test_each_closing_kind_names_a_close_step_taking_the_engine_and_the_day(kind) -> None:  # type: ignore[no-untyped-def]
    step = resolve(kind.close_step)
    params = inspect.signature(step).parameters
    assert list(params)[:2] == ["engine", "day"]
    # Whatever else it takes has a default, except the upkeep's wall-clock instant.
    rest = [p for p in list(params.values())[2:] if p.default is inspect.Parameter.empty]
    assert [p.name for p in rest] == (["now"] if kind.closing == "upkeep" else [])


def test_provider_kinds_have_no_hooks_and_do_not_close_a_day() -> None:
    for kind in KINDS.values():
        if kind.medium == "provider":
            assert kind.hooks is None and kind.closing is None


def test_the_lists_that_cannot_import_the_registry_name_the_same_kinds() -> None:
    """policies (pure) and the ladder's schema (a Literal for pydantic and mypy) cannot read
    the registry, so they are held to it here."""
    import typing

    from outreach.planning.ladder import Action
    from policies.pack_model import ALL_CHANNELS

    assert ALL_CHANNELS == frozenset(CHANNELS)
    ladder_kinds = typing.get_args(Action.model_fields["channel"].annotation)
    assert ladder_kinds == CHANNELS


@pytest.mark.parametrize(
    "kind", [k for k in KINDS.values() if k.medium == "own"], ids=lambda k: k.name
)
def test_each_own_medium_names_its_channel_built_from_settings_url_and_data_dir(kind) -> None:  # type: ignore[no-untyped-def]
    from contact_channels.registry import LOCAL_MEDIA

    channel = resolve(kind.channel)
    assert inspect.isclass(channel)
    assert (channel.kind, channel.backend) == (kind.name, LOCAL_MEDIA[kind.name])
    params = inspect.signature(channel).parameters
    assert list(params)[0] == "settings"
    assert {"database_url", "data_dir"} <= set(params)
    assert all(callable(getattr(channel, m)) for m in ("send", "lookup", "close"))


def test_provider_kinds_name_no_channel_and_every_own_medium_has_a_builder() -> None:
    from outreach.planning.kinds import OWN_MEDIA

    assert {k.name for k in KINDS.values() if k.channel} == set(OWN_MEDIA)
    assert set(OWN_MEDIA) == {k.name for k in KINDS.values() if k.medium == "own"}


@pytest.mark.parametrize(
    "kind", [k for k in KINDS.values() if k.medium == "own"], ids=lambda k: k.name
)
def test_contact_channels_alone_refuses_to_build_an_own_medium(kind, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from contact_channels.registry import LOCAL_MEDIA, build_channel

    with pytest.raises(ValueError, match="is one of our own media: build it through outreach"):
        build_channel(
            kind.name,
            {"backend": LOCAL_MEDIA[kind.name]},
            outbox_url=f"sqlite:///{tmp_path / 'o.db'}",
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
        )
