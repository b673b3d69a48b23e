"""A loopback HTTP server that misbehaves on purpose, and the real CLI run in-process against it.

`HostileServer(answer)` records every request (`seen`) and answers each with what `answer(seen)`
returns: one of the acts below (a redirect, an echo, a trickle, a cut-off chunked body, HTML,
an empty 200, a 204, a JSON list, deeply nested JSON, a huge body), or None to pass the request
on to `upstream` (a real sandbox) and relay its answer as it is: a proxy, honest or broken.
It also serves as an HTTP proxy (requests in absolute form, CONNECT tunnels).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import as_a_process, fail_on_thread_errors
from typer.testing import CliRunner

from payor_cli.cli import app

CUSTOMER_FIELDS = {
    "payorcrm": 'customerno = "No"\nemailaddress1 = "Email"\ncompanyname = "Name"',
    "business-suite": 'email = "Email"\naccount = "Name"',
    "onlyoffice": 'email = "Email"\ncompanyName = "Name"',
}
"""Each target's customers mapped from a file of No, Email, Name (the hostile tests' export)."""


@dataclass
class Seen:
    """One request as the server got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """Everything the request carried, as text (to look for a secret in)."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{head}\n\n{self.body.decode('utf-8', 'replace')}"


Act = Callable[["_Handler"], None]


@dataclass
class HostileServer:
    answer: Callable[[Seen], Act | None] = lambda seen: None
    upstream: str | None = None
    seen: list[Seen] = field(default_factory=list)
    sent_bytes: int = 0
    """Body bytes written by `huge` before the client hung up."""
    tunnels: dict[str, tuple[str, int]] = field(default_factory=dict)
    """As a proxy: CONNECT to this host name goes to that address instead."""
    tls: ssl.SSLContext | None = None
    """Serve https with this context (a server certificate loaded)."""

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._server.hostile = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True
        self._thread.start()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def forward(self, seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream's answer to this request."""
        assert self.upstream is not None
        target = urlsplit(self.upstream)
        parts = urlsplit(seen.path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        skip = {"host", "connection", "proxy-connection", "accept-encoding"}
        headers = {k: v for k, v in seen.headers.items() if k.lower() not in skip}
        connection.request(seen.method, path, body=seen.body or None, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() in ("content-type",)]
        connection.close()
        return answer.status, kept, body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def hostile(self) -> HostileServer:
        return self.server.hostile  # type: ignore[attr-defined]

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers.items()), body)
        self.hostile.record(seen)
        act = self.hostile.answer(seen) or relay
        try:
            act(self)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def do_CONNECT(self) -> None:
        """A proxy's tunnel: to where the request line says, or refused when `answer` says."""
        seen = Seen("CONNECT", self.path, dict(self.headers.items()), b"")
        self.hostile.record(seen)
        act = self.hostile.answer(seen)
        if act is not None:
            act(self)
            return
        host, port = self.path.rsplit(":", 1)
        tunnel_to = self.hostile.tunnels.get(host, (host, int(port)))
        upstream = socket.create_connection(tunnel_to, timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while not self.hostile.stopping.is_set():
                ready, _, _ = select.select(sockets, [], [], 0.1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True

    # -- writing ---------------------------------------------------------------------------------
    def head(self, status: int, headers: dict[str, str], reason: str | None = None) -> None:
        self.send_response(status, reason)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


# -- acts ----------------------------------------------------------------------------------------
def raw(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    reason: str | None = None,
    **headers: str,
) -> Act:
    """`body` as it is; `reason`: the status line's phrase ("OK" and the like by default)."""

    def act(handler: _Handler) -> None:
        fields = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
        if status == 204:
            del fields["Content-Length"]
        handler.head(status, fields, reason)
        if body:
            handler.wfile.write(body)

    return act


def json_answer(status: int, data: Any, **headers: str) -> Act:
    return raw(status, json.dumps(data).encode(), **headers)


def html(status: int, title: str) -> Act:
    page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body>Sign in</body></html>"
    return raw(status, page.encode(), "text/html; charset=utf-8")


def redirect(status: int, location: str) -> Act:
    return raw(status, b"", "text/plain", Location=location)


def no_content() -> Act:
    return raw(204, b"")


def nested(depth: int) -> Act:
    return raw(200, b"[" * depth + b"]" * depth)


def relay(handler: _Handler) -> None:
    """The upstream's answer, as it is."""
    seen = handler.hostile.seen[-1]
    status, headers, body = handler.hostile.forward(seen)
    handler.head(status, dict(headers) | {"Content-Length": str(len(body))})
    handler.wfile.write(body)


def after_upstream(act: Act) -> Act:
    """The upstream does the request (it stores the rows), then `act` answers instead."""

    def both(handler: _Handler) -> None:
        handler.hostile.forward(handler.hostile.seen[-1])
        act(handler)

    return both


def trickle(body: bytes, every: float, headers_too: bool = False) -> Act:
    """The answer a byte at a time, `every` seconds apart (its headers too, if asked)."""

    def act(handler: _Handler) -> None:
        stopping = handler.hostile.stopping
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if headers_too:
            body_out = head + body
        else:
            handler.wfile.write(head)
            handler.wfile.flush()
            body_out = body
        for i in range(len(body_out)):
            if stopping.wait(every):
                return
            handler.wfile.write(body_out[i : i + 1])
            handler.wfile.flush()

    return act


def cut_chunked(first: bytes) -> Act:
    """A chunked answer that ends (the connection closed) before its last chunk."""

    def act(handler: _Handler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        handler.wfile.write(f"{len(first):x}\r\n".encode() + first + b"\r\n")
        handler.wfile.flush()
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    return act


def huge(size: int) -> Act:
    """A 200 of `size` bytes of JSON-looking filler, written until the client hangs up."""

    def act(handler: _Handler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Content-Length": str(size)})
        block = b" " * 65536
        written = 0
        try:
            while written < size and not handler.hostile.stopping.is_set():
                handler.wfile.write(block)
                written += len(block)
        finally:
            handler.hostile.sent_bytes += written

    return act


def chunked_huge() -> Act:
    """A chunked 200 that never ends (no Content-Length to refuse it by)."""

    def act(handler: _Handler) -> None:
        handler.head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        block = b" " * 65536
        chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        written = 0
        try:
            while not handler.hostile.stopping.is_set() and written < 64 * 1024 * 1024:
                handler.wfile.write(chunk)
                written += len(block)
        finally:
            handler.hostile.sent_bytes += written

    return act


# -- the CLI, in-process ---------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    out: str
    files: dict[str, str]
    """The text of each output file the run wrote (report, rejected rows, log)."""

    @property
    def everything(self) -> str:
        """What left the process: the terminal and every file."""
        return self.out + "\n".join(self.files.values())

    @property
    def report(self) -> dict:
        return json.loads(self.files["report"])


CLEAN_ENV = {
    "PAYOR_API_KEY": None,
    "PAYOR_API_SECRET": None,
    "PAYOR_API_USER": None,
    "PAYOR_API_PASSWORD": None,
    "PAYOR_BASE_URL": None,
    "PAYOR_TARGET": None,
    "PAYOR_STATE_DIR": None,
    "HTTP_PROXY": None,
    "HTTPS_PROXY": None,
    "ALL_PROXY": None,
    "NO_PROXY": None,
    "http_proxy": None,
    "https_proxy": None,
    "all_proxy": None,
    "no_proxy": None,
    "REQUESTS_CA_BUNDLE": None,
    "CURL_CA_BUNDLE": None,
    "COLUMNS": "200",
}


def invoke(tmp: Path, *args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """`payor ARGS --report-json --rejected --log-file` run in this process (typer's runner)."""
    outputs = {"report": tmp / "report.json", "rejected": tmp / "rejected.csv", "log": tmp / "log"}
    for path in outputs.values():
        path.unlink(missing_ok=True)
    flags = ["--report-json", outputs["report"], "--rejected", outputs["rejected"]]
    flags += ["--log-file", outputs["log"]]
    runtime = tmp.with_name(tmp.name + "-run")  # the test's own per-account locks
    runtime.mkdir(mode=0o700, exist_ok=True)
    with as_a_process(tmp, timeout=120) as thread_errors:  # what the run changes is put back
        result = CliRunner().invoke(
            app,
            [*map(str, args), *map(str, flags)],
            env=CLEAN_ENV | {"XDG_RUNTIME_DIR": str(runtime)} | (env or {}),
            catch_exceptions=False,
        )
    fail_on_thread_errors(f"payor {' '.join(map(str, args))}", thread_errors)
    files = {
        name: path.read_text(encoding="utf-8", errors="replace")
        for name, path in outputs.items()
        if path.exists()
    }
    return Result(result.exit_code, result.output, files)


def wait_until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the server never saw what the test waits for")
        time.sleep(0.02)
