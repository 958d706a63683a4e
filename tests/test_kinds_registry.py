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
