"""The machinery the fake providers share: a threaded HTTP server on 127.0.0.1, request
recording, and faults injected from a queue or per destination."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS: tuple[str, ...] = ("status", "reset", "timeout", "slow")
STATS_PATH = "/_fake/stats"


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected misbehaviour. Build with the class methods.

    ``status``: an error reply (``code`` is the provider's error code, ``retry_after`` adds the
    header). ``reset``: read the request, then reset the connection without a reply. ``timeout``:
    read and accept the request, answer only after ``delay`` (longer than the client waits).
    ``slow``: answer normally after ``delay``.
    """

    kind: str
    status: int = 0
    code: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")

    @classmethod
    def http(
        cls,
        status: int,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> Fault:
        return cls("status", status=status, code=code, retry_after=retry_after, message=message)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0) -> Fault:
        return cls("status", status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status=status)

    @classmethod
    def provider_error(cls, code: int, status: int = 400, message: str | None = None) -> Fault:
        return cls("status", status=status, code=code, message=message)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def timeout(cls, seconds: float = 3.0) -> Fault:
        return cls("timeout", delay=seconds)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", delay=seconds)

    @property
    def label(self) -> str:
        if self.kind == "status":
            return f"status:{self.status}" + (f":{self.code}" if self.code else "")
        return self.kind


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the fake received it, parsed. ``fault`` names the fault applied, if any."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    destination: str | None = None
    fault: str | None = None
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts from a thread pool must not be refused by a short listen backlog.
    request_queue_size = 256
    fake: FakeProviderServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply goes out in one segment, as a real server's would: headers and body written
    # separately, with Nagle on, stall each keep-alive round trip for the client's delayed ACK.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    # Idle keep-alive connections end after this, so handler threads do not pile up.
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # a test run must not print every request

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.fake._dispatch(self, body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve


class FakeProviderServer:
    """Base of the fakes: ``with FakeX() as fake: fake.base_url``. Thread-safe.

    Subclasses implement ``destination_of``, ``check_auth``, ``is_send``, ``handle`` and
    ``error_reply``.
    """

    name = "fake"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_rate: float | None = None
    ) -> None:
        self._address = (host, port)
        # The provider's own rate limit: sends above ``max_rate`` a second (burst: one second's
        # worth) get 429 with Retry-After, as the real APIs answer.
        self.max_rate = max_rate
        self._allowance = float(max_rate or 0.0)
        self._allowance_at = time.monotonic()
        self.rate_limited = 0  # sends refused by max_rate
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._faults: deque[Fault] = deque()
        self._destination_faults: dict[str, list[Any]] = {}
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self.max_in_flight = 0  # most requests being handled at once, since the start

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(self._address, _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{self.name}-server",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # Wake handlers sleeping in a timeout/slow fault so they exit without replying.
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults and records ----------------------------------------------------------------

    def fail_next(self, *faults: Fault) -> None:
        """Apply these faults, in order, to the next authenticated send requests, one each."""
        with self._lock:
            self._faults.extend(faults)

    def fail_destination(self, destination: str, fault: Fault, *, times: int | None = None) -> None:
        """Apply ``fault`` to sends to ``destination``: ``times`` times, or always if None.
        A destination fault wins over the queue."""
        with self._lock:
            self._destination_faults[destination] = [fault, times]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._destination_faults.clear()

    def reset(self) -> None:
        """Forget faults, requests and accepted messages."""
        with self._lock:
            self._faults.clear()
            self._destination_faults.clear()
            self._requests.clear()
            self._reset_state()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), faulted ones included."""
        with self._lock:
            return list(self._requests)

    def sends(self, destination: str | None = None) -> list[RecordedRequest]:
        """The send requests received, optionally to one destination."""
        return [
            r
            for r in self.requests
            if self.is_send(r) and (destination is None or r.destination == destination)
        ]

    def _over_rate(self, units: int = 1) -> bool:
        """Take a send's units (:meth:`rate_units`) from the provider's own allowance; True
        when there are not enough left."""
        if self.max_rate is None:
            return False
        need = min(float(units), self.max_rate)  # a send above a second's worth waits a second
        with self._lock:
            now = time.monotonic()
            self._allowance = min(
                self.max_rate, self._allowance + (now - self._allowance_at) * self.max_rate
            )
            self._allowance_at = now
            if self._allowance >= need:
                self._allowance -= need
                return False
            self.rate_limited += 1
            return True

    def stats(self) -> dict[str, Any]:
        """Counts for a benchmark in another process (``GET /_fake/stats``)."""
        with self._lock:
            sends = [r for r in self._requests if self.is_send(r)]
            rate_limited, max_in_flight = self.rate_limited, self.max_in_flight
        taken = [r for r in sends if r.fault is None]
        start = min((r.received_at for r in taken), default=0.0)
        per_second: list[int] = []
        units_per_second: list[int] = []
        for r in taken:
            second = int(r.received_at - start)
            per_second.extend([0] * (second + 1 - len(per_second)))
            units_per_second.extend([0] * (second + 1 - len(units_per_second)))
            per_second[second] += self.messages_in(r)
            units_per_second[second] += self.rate_units(r)
        keys = self.accepted_keys()
        return {
            "requests": len(sends),
            "faulted": len(sends) - len(taken),
            "rate_limited": rate_limited,
            "max_in_flight": max_in_flight,
            "accepted": len(keys),
            "distinct_keys": len(set(keys)),
            "accepted_per_second": per_second,
            "accepted_units_per_second": units_per_second,
        }

    def messages_in(self, request: RecordedRequest) -> int:
        """How many messages one send request carries."""
        return 1

    def rate_units(self, request: RecordedRequest) -> int:
        """What one send request costs against ``max_rate`` (Twilio: the SMS's segments)."""
        return 1

    def accepted_keys(self) -> list[str]:
        """The ledger keys of accepted messages, with repeats (subclasses know where they are)."""
        return []

    def _take_fault(self, destination: str | None) -> Fault | None:
        with self._lock:
            entry = self._destination_faults.get(destination) if destination else None
            if entry is not None:
                fault, times = entry
                if times is not None:
                    if times <= 1:
                        del self._destination_faults[destination]  # type: ignore[arg-type]
                    else:
                        entry[1] = times - 1
                return fault  # type: ignore[no-any-return]
            return self._faults.popleft() if self._faults else None

    # -- request handling ------------------------------------------------------------------

    def _dispatch(self, handler: _Handler, body: bytes) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._serve(handler, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, handler: _Handler, body: bytes) -> None:
        split = urlsplit(handler.path)
        headers = {k: v for k, v in handler.headers.items()}
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        form: dict[str, str] = {}
        parsed_json: Any = None
        if content_type == "application/x-www-form-urlencoded":
            form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        elif content_type == "application/json" and body:
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        request = RecordedRequest(
            method=handler.command,
            path=split.path,
            query={k: v[-1] for k, v in parse_qs(split.query).items()},
            headers=headers,
            body=body,
            form=form,
            json=parsed_json,
            received_at=time.monotonic(),
        )
        request = replace(request, destination=self.destination_of(request))

        if request.method == "GET" and request.path == STATS_PATH:
            self._write(handler, Reply.json(200, self.stats()))
            return
        denied = self.check_auth(request)
        fault = (
            None
            if denied is not None or not self.is_send(request)
            else self._take_fault(request.destination)
        )
        if denied is None and fault is None and self.is_send(request) and self._over_rate(self.rate_units(request)):
            fault = Fault("status", status=429, retry_after=1.0, message="rate limit exceeded")
        if fault is not None:
            request = replace(request, fault=fault.label)
        # Recorded before any fault plays out: a reset or timed-out request was still received.
        with self._lock:
            self._requests.append(request)

        if denied is not None:
            self._write(handler, denied)
            return
        if fault is not None and fault.kind == "reset":
            _reset_connection(handler)
            return
        if fault is not None and fault.kind in ("timeout", "slow"):
            if self._stopping.wait(fault.delay):
                handler.close_connection = True
                return
        if fault is not None and fault.kind == "status":
            self._write(handler, self.error_reply(request, fault))
            return
        self._write(handler, self.handle(request))

    def _write(self, handler: _Handler, reply: Reply) -> None:
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            if reply.body:
                handler.wfile.write(reply.body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout fired first); that is the point of the fault.
            handler.close_connection = True

    # -- provider hooks --------------------------------------------------------------------

    def destination_of(self, request: RecordedRequest) -> str | None:
        return None

    def check_auth(self, request: RecordedRequest) -> Reply | None:
        """An error reply when the credentials are wrong, else None."""
        return None

    def is_send(self, request: RecordedRequest) -> bool:
        return request.method == "POST"

    def handle(self, request: RecordedRequest) -> Reply:
        return Reply(404)

    def error_reply(self, request: RecordedRequest, fault: Fault) -> Reply:
        headers = {"Retry-After": retry_after_value(fault.retry_after)} if fault.retry_after else {}
        return Reply.json(fault.status, {"message": fault.message or "error"}, headers)

    def _reset_state(self) -> None:
        """Subclasses forget their accepted messages here (called under the lock)."""


def retry_after_value(value: float | None) -> str:
    """Retry-After is whole seconds; round up so a client never waits less than we meant."""
    if value is None:
        return "0"
    whole = int(value)
    return str(whole if whole == value else whole + 1)


def _reset_connection(handler: _Handler) -> None:
    """Close with SO_LINGER 0 so the client gets a TCP RST instead of a reply."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
    except OSError:
        pass
