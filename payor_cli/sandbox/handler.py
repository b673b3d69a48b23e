"""The sandbox's HTTP side: a threading server on its loopback port, and the handler that reads
each request (its body bounded), has the sandbox answer it, and writes the reply. No header
value (the secret!) is ever logged."""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, urlsplit

from payor_cli.sandbox.replies import HttpReply, failure

MAX_BODY_BYTES = 256 * 1024 * 1024
"""A body larger than this is refused unread (413): the sandbox is no place for 1 GB uploads."""


class Served(Protocol):
    """What the HTTP side asks of the sandbox it serves (server.Sandbox)."""

    config: Any
    routes: Any

    def log(self, line: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def records(self, kind: str) -> list[dict[str, Any]]: ...

    def reset(self) -> None: ...

    def in_flight(self, change: int) -> None: ...

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> HttpReply: ...

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None, note: str = ""
    ) -> HttpReply: ...

    def dress(self, reply: HttpReply) -> None: ...


class HttpServer(ThreadingHTTPServer):
    """http.server's threading server, on the sandbox's port, asking no DNS."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Served) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's FQDN, which can hang without a network
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; the sandbox reports through its callback
        exc = sys.exc_info()[1]
        self.sandbox.log(f"connection error: {type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests: introspection under /sandbox/, the rest the API's."""

    protocol_version = "HTTP/1.1"
    # without it, Nagle's algorithm and the client's delayed ACK stall every answer ~40 ms
    disable_nagle_algorithm = True
    server_version = "PayorSandbox/1"
    timeout = 120  # seconds an idle keep-alive connection holds its thread

    @property
    def sandbox(self) -> Served:
        return cast(HttpServer, self.server).sandbox

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        sandbox = self.sandbox
        if path == "/sandbox/stats":
            self._send(HttpReply(200, sandbox.stats()))
        elif path.startswith("/sandbox/records/"):
            name = path.removeprefix("/sandbox/records/")
            if name in sandbox.routes.kinds:
                text = json.dumps(sandbox.records(name), ensure_ascii=False)
                self._send(HttpReply(200, text.encode()))
            else:
                self._send(HttpReply(404, failure(f"no such kind: {name}")))
        else:
            self._api(b"")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path == "/sandbox/reset":
            self.sandbox.reset()
            self._send(HttpReply(200, {"success": True}))
        elif path.startswith("/sandbox/"):  # introspection is not traffic: not counted
            self._send(HttpReply(404, failure(f"no such endpoint: POST {path}")))
        else:
            self._api(body)

    def do_PUT(self) -> None:
        body = self._read_body()
        if body is not None:
            self._api(body)

    # methods no dialect routes: answered by the API (405 on a known path), not by http.server
    do_DELETE = do_PATCH = do_PUT

    def _api(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        sandbox = self.sandbox
        sandbox.in_flight(+1)
        try:
            if sandbox.config.latency:
                # outside every lock: requests in flight wait side by side
                time.sleep(sandbox.config.latency)
            try:
                reply = sandbox.answer(self.command, parts.path, query, self.headers, body)
            except Exception as exc:  # a sandbox bug must answer, not hang the client
                reply = sandbox.error(500, f"sandbox error: {type(exc).__name__}: {exc}")
            self._send(reply)
        finally:
            sandbox.in_flight(-1)

    def _read_body(self) -> bytes | None:
        """Exactly Content-Length bytes, so the next request on this connection parses."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(self.sandbox.error(411, "send a Content-Length, not a chunked body"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(self.sandbox.error(400, "invalid Content-Length"))
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(self.sandbox.error(413, f"body too large, max {MAX_BODY_BYTES} bytes"))
            return None
        return self.rfile.read(length)

    def _send(self, reply: HttpReply) -> None:
        if reply.delay > 0:
            time.sleep(reply.delay)
        what = f"{self.command} {urlsplit(self.path).path}"
        if reply.drop:
            self.close_connection = True  # no byte of answer: the client sees the socket close
            self.sandbox.log(
                f"{what} -> connection dropped{' ' + reply.note if reply.note else ''}"
            )
            return
        if isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()
        # logged before answering, so a client that has its answer finds the line written
        if not urlsplit(self.path).path.startswith("/sandbox/"):
            self.sandbox.dress(reply)
            self.sandbox.log(f"{what} -> {reply.status}{' ' + reply.note if reply.note else ''}")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a stall): nothing to do

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _send logs its own line, with what the sandbox did

    def log_message(self, format: str, *args: Any) -> None:
        # request lines only; header values (the secret) never reach a log
        self.sandbox.log(format % args)
