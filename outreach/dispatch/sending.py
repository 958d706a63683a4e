"""Sending: the channel a dispatch run sends through, how many sends it keeps in flight
(``channels.yaml``: ``concurrency``, ``group_size``) and the pool of sender threads."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from contact_channels.base import Channel, ChannelError, OutboundMessage, SendResult, is_local
from outreach import settings
from outreach.planning.kinds import build_channel, channel_settings

CLAIM_CHUNK = 25  # contacts claimed per transaction: what a killed worker can leave in doubt


def open_channel(kind: str) -> Channel:
    return build_channel(
        kind,
        channel_settings(kind),
        outbox_url=settings.outbox_url(),
        state_dir=settings.data_dir(),
        database_url=settings.database_url(),
    )


@dataclass(frozen=True, slots=True)
class SendTuning:
    concurrency: int  # sender threads; 1 sends from the dispatching thread itself
    group_size: int  # contacts claimed per transaction: what a killed worker can leave in doubt


PROVIDER_CONCURRENCY = 16


def send_tuning(channel: str, impl: Channel, *, concurrency: int | None = None) -> SendTuning:
    """``concurrency`` and ``group_size`` from ``channels.yaml``, checked, with defaults."""
    section = channel_settings(channel)
    values: dict[str, int] = {}
    defaults = {
        # Our own media are local writes: no round trip to hide behind threads.
        "concurrency": 1 if is_local(impl) else PROVIDER_CONCURRENCY,
        "group_size": CLAIM_CHUNK,
    }
    for name, default in defaults.items():
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise ValueError(
                f"channels.{channel}.{name}: must be a whole number from 1 to 1000, not {value!r}"
            )
        values[name] = value
    if concurrency is not None:
        values["concurrency"] = concurrency
    return SendTuning(**values)


class NotSent:
    """The outcome of a send unit skipped because the pool stopped: nothing left this process."""


NOT_SENT = NotSent()


class SenderPool:
    """Runs sends on ``size`` threads (or inline when ``size`` is 1). A send unit is one
    message, or a batch for a channel that sends several in one request (``send_batch``).

    An exception that is not a ChannelError is an adapter bug: the pool stops (``broken``), and
    units that had not started yet come back NOT_SENT, so the dispatcher can release them."""

    def __init__(self, impl: Channel, size: int) -> None:
        self.impl = impl
        self.batch_limit = max(1, int(getattr(impl, "max_batch", 1) or 1))
        self.broken: BaseException | None = None
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="send") if size > 1 else None

    def submit(self, messages: list[OutboundMessage]) -> list[Future[list[SendOutcome]]]:
        units = [
            messages[i : i + self.batch_limit] for i in range(0, len(messages), self.batch_limit)
        ]
        futures: list[Future[list[SendOutcome]]] = []
        for unit in units:
            if self._executor is None:
                done: Future[list[SendOutcome]] = Future()
                done.set_result(self._send_unit(unit))
                futures.append(done)
            else:
                futures.append(self._executor.submit(self._send_unit, unit))
        return futures

    def _send_unit(self, unit: list[OutboundMessage]) -> list[SendOutcome]:
        if self.broken is not None:
            return [NOT_SENT] * len(unit)
        try:
            if len(unit) > 1:
                return list(self.impl.send_batch(unit))  # type: ignore[attr-defined]
            return [self.impl.send(unit[0])]
        except ChannelError as exc:
            return [exc] * len(unit)
        except Exception as exc:  # a bug: every message of the unit is in doubt
            self.broken = exc
            return [exc] * len(unit)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


SendOutcome = SendResult | Exception | NotSent
