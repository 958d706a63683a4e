"""Benchmark: the webhook app's memory under large unsigned uploads (the body cap's reason).

    python bench/webhook_body_cap.py [--uploads 4] [--mb 300] [--content-length] [--route twilio]

Starts ``outreach.entry.webhooks_app.create_app()`` under uvicorn in its own process on 127.0.0.1
(the code imported is whatever ``PYTHONPATH`` names, so the same script measures an older
checkout too: run it from outside the checkout, the current directory comes first on the path),
then posts ``--uploads`` parallel unsigned bodies of ``--mb`` MB each to the SendGrid route (or
the Twilio inbound route, a form of 1 MB fields), chunked (no Content-Length) unless ``--content-length``. Each client stops when
the server closes the connection or the body is sent. Reported: the server's resident memory
before, at its peak (sampled every 20 ms, and the kernel's VmHWM) and after, the bytes each
client got through, the status it read back, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SERVER = """
import socket, sys, uvicorn
from outreach.entry.webhooks_app import create_app
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(create_app(), log_level="error", lifespan="off")).run(sockets=[sock])
"""
ROUTES = {  # path, content type, first bytes of each 1 MB chunk
    "sendgrid": ("/webhooks/sendgrid/events", "application/json", b""),
    # a new field of just under 1 MiB per chunk: what Starlette's form parser used to accept
    "twilio": ("/webhooks/twilio/inbound", "application/x-www-form-urlencoded", b"&F="),
}
CHUNK = 1024 * 1024


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def upload(port: int, route: str, total: int, content_length: bool, out: dict[str, Any]) -> None:
    path, content_type, start = ROUTES[route]
    sent, status = 0, None
    piece = start + b"x" * (CHUNK - len(start))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        head += f"Content-Length: {total}\r\n" if content_length else "Transfer-Encoding: chunked\r\n"
        try:
            sock.sendall((head + "\r\n").encode())
            while sent < total:  # bounded: never more than the body asked for
                size = min(CHUNK, total - sent)
                data = piece[:size]
                sock.sendall(data if content_length else b"%x\r\n%s\r\n" % (size, data))
                sent += size
            if not content_length:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up: what the cap is for
        try:
            first = sock.recv(4096).split(b"\r\n", 1)[0].decode()
            status = int(first.split()[1]) if first else None
        except (TimeoutError, ConnectionResetError, IndexError, ValueError):
            status = None
    out.update(sent_mb=round(sent / 1e6, 1), status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--content-length", action="store_true")
    parser.add_argument("--route", choices=sorted(ROUTES), default="sendgrid")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outreach-bench-webhooks-") as tmp:
        env = {**os.environ, "AIRFLOW_HOME": tmp, "OUTREACH_DATA_DIR": tmp,
               "OUTREACH_DATABASE_URL": f"sqlite:///{tmp}/app.db"}
        proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                                env=env, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            time.sleep(1.0)  # let the server settle before the baseline
            before = status_kb(proc.pid, "VmRSS")
            peak = before
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, status_kb(proc.pid, "VmRSS"))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            results: list[dict[str, Any]] = [{} for _ in range(args.uploads)]
            started = time.perf_counter()
            clients = [threading.Thread(target=upload, args=(port, args.route, args.mb * 1_000_000,
                                                             args.content_length, r))
                       for r in results]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            seconds = time.perf_counter() - started
            time.sleep(1.0)
            done.set()
            sampler.join()
            report = {
                "route": ROUTES[args.route][0], "uploads": args.uploads, "mb_each": args.mb,
                "framing": "content-length" if args.content_length else "chunked",
                "rss_before_mb": round(before / 1024), "rss_peak_mb": round(peak / 1024),
                "vm_hwm_mb": round(status_kb(proc.pid, "VmHWM") / 1024),
                "rss_after_mb": round(status_kb(proc.pid, "VmRSS") / 1024),
                "seconds": round(seconds, 2), "clients": results,
            }
            print(json.dumps(report, indent=2))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
