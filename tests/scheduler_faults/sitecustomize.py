"""Fault injection for the scheduler end-to-end test (tests/test_scheduler_e2e.py), activated only
by putting this directory on PYTHONPATH of the Airflow processes the test starts.

Python imports ``sitecustomize`` at startup; this one installs an import hook that, once
``outreach.dispatch.dispatcher`` is imported in a task process, wraps ``dispatch_range`` so that every
dispatch batch sends through a ``FaultyChannel`` around the channel ``open_channel`` builds.
The product code is unchanged; without ``OUTREACH_FAULT_DIR`` this module does nothing.

Environment (all read here and nowhere else):

``OUTREACH_FAULT_DIR``
    A directory shared with the test. ``sends.log`` gets one line per message handed to the
    real channel (``channel key pid``), from every batch and every try: the test's proof that
    no key went out twice, independent of the outbox's own idempotency.
``OUTREACH_FAULT_INJECT=<channel>:<lo|*>:<n>``
    In ONE dispatch batch of ``channel`` (the one starting at account ``lo``, or with ``*`` the
    first to get there), the ``n``-th send reaches the channel and then raises RuntimeError: the
    provider took the message but its answer was lost. Fires once (``inject.fired``, created
    exclusively, holds the batch's ``lo``), so the cleared rerun runs clean.
``OUTREACH_FAULT_HANG=<channel>:<lo|*>:<n>``
    In ONE dispatch batch of ``channel``, after ``n`` sends, write ``hang.pid`` (``pid lo``) and
    block before the next send until the process is killed. Fires once (``hang.fired``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "outreach.dispatch.dispatcher"


def _fault(name: str) -> tuple[str, int | None, int] | None:
    value = os.environ.get(name)
    if not value:
        return None
    channel, lo, n = value.split(":")
    return channel, None if lo == "*" else int(lo), int(n)


def _claim_once(path: Path, text: str) -> bool:
    """True for the one process that creates ``path`` (O_EXCL), across tries and batches."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return True


class FaultyChannel:
    """Delegates to the real channel; journals each send; injects at most the configured
    faults. Same ``kind`` and ``backend`` as the real channel, so the dispatcher treats it
    exactly as the real one (outbox: authoritative lookups, logical clock allowed)."""

    def __init__(self, inner: Any, channel: str, lo: int, fault_dir: Path) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.backend = inner.backend
        self.channel, self.lo, self.fault_dir = channel, lo, fault_dir
        self.sends = 0
        self.inject = self._mine(_fault("OUTREACH_FAULT_INJECT"))
        self.hang = self._mine(_fault("OUTREACH_FAULT_HANG"))
        self.inject_armed = True  # decided at the n-th send, when the marker is claimed
        self.hang_armed = True

    def _mine(self, fault: tuple[str, int | None, int] | None) -> int | None:
        if fault is None:
            return None
        channel, lo, n = fault
        return n if channel == self.channel and lo in (None, self.lo) else None

    def send(self, message: Any) -> Any:
        if self.hang is not None and self.hang_armed and self.sends == self.hang:
            self.hang_armed = _claim_once(self.fault_dir / "hang.fired", str(self.lo))
            if self.hang_armed:
                (self.fault_dir / "hang.pid.tmp").write_text(f"{os.getpid()} {self.lo}")
                os.replace(self.fault_dir / "hang.pid.tmp", self.fault_dir / "hang.pid")
                while True:  # the test kills this process with SIGKILL
                    time.sleep(1)
        result = self.inner.send(message)
        self.sends += 1
        # One write per line with O_APPEND: lines from concurrent batches do not interleave.
        with open(self.fault_dir / "sends.log", "a") as journal:
            journal.write(f"{self.channel} {message.key} {os.getpid()}\n")
        if self.inject is not None and self.inject_armed and self.sends == self.inject:
            self.inject_armed = _claim_once(self.fault_dir / "inject.fired", str(self.lo))
            if self.inject_armed:
                raise RuntimeError("injected fault: the channel's answer was lost")
        return result

    def lookup(self, key: str) -> Any:
        return self.inner.lookup(key)

    def close(self) -> None:
        self.inner.close()


def _patch(module: ModuleType) -> None:
    fault_dir = Path(os.environ["OUTREACH_FAULT_DIR"])
    original = module.dispatch_range
    open_channel = module.open_channel

    def dispatch_range(engine: Any, day: Any, channel: str, lo: int, hi: int, **kwargs: Any) -> Any:
        if kwargs.get("channel_impl") is not None:
            return original(engine, day, channel, lo, hi, **kwargs)
        impl = FaultyChannel(open_channel(channel), channel, lo, fault_dir)
        try:
            return original(engine, day, channel, lo, hi, channel_impl=impl, **kwargs)
        finally:
            impl.close()

    module.dispatch_range = dispatch_range  # type: ignore[attr-defined]


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if os.environ.get("OUTREACH_FAULT_DIR") and not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
