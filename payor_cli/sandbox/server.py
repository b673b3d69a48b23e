"""The generic local API server: a loopback port, faults on demand, counters, a store.

Each target's dialect (`targets/<api>/sandbox.py`) gives the routes; this module knows no API.
The HTTP side (port, handler, bounded bodies) is handler.py's; what is answered, replies.py's.
Used by `payor sandbox` for rehearsals, embedded by `payor upload --sandbox`, and by tests as a
real loopback server. It never prints and never exits: request lines go to an optional `log`
callback, and no header value (the secret!) is ever logged. Standard library only.

It plays the strict and unreliable API the contract tells the client to expect: it rate-limits
with `X-RateLimit-*` headers, and injects 5xx, 429, dropped connections, `success: false` on a
200, and answers that come after the rows were stored.
"""

from __future__ import annotations

import hmac
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payor_cli.sandbox.handler import HttpServer
from payor_cli.sandbox.replies import HttpReply, failure, injected
from payor_cli.sandbox.store import Store

FAULTS = ("500", "502", "503", "504", "429", "drop", "soft")
RESET_STYLES = ("seconds", "epoch")
RETRY_AFTER_ONE_SECOND = 0.25
"""Share of injected 429/503 that ask for 1 s instead of 0 s: realistic, yet tests stay fast."""


@dataclass
class SandboxConfig:
    """How the sandbox behaves; every field is one `payor sandbox` option."""

    api_key: str = field(default="sandbox-key", repr=False)
    api_secret: str = field(default="sandbox-secret", repr=False)
    db_path: Path | None = None
    """SQLite file for the stored rows; None keeps them in memory for the server's life."""
    name_rows: bool = True
    """False: a refused batch says only "validation failed", so the client must bisect."""
    max_batch: int | None = None
    """Rows per request above which the answer is 413; None: no limit."""
    fault_rate: float = 0.0
    """Probability (0..1) that an upload gets one of `faults` instead of being processed."""
    faults: tuple[str, ...] = ("500", "502", "503", "429", "drop")
    seed: int = 0
    """Seed of the dice for faults and stalls: the same requests meet the same faults."""
    stall_rate: float = 0.0
    """Probability (0..1) that a stored batch is answered only after `stall_seconds`."""
    stall_seconds: float = 0.0
    latency: float = 0.0
    """Seconds every API request waits before it is answered, as a distant server's round trip."""
    rate_limit: int | None = None
    """Upload requests allowed per fixed window of `rate_window` seconds; None: no limit."""
    rate_window: float = 1.0
    reset_style: str = "seconds"
    """X-RateLimit-Reset as seconds from now ("seconds") or as a Unix time ("epoch")."""
    refuse_keys: str | None = None
    """Regex: a row whose key it matches (re.search) is refused, to rehearse a server refusal."""
    api_user: str = "sandbox-user"
    """onlyoffice: the user whose password (api_secret) is exchanged for the token (api_key)."""
    items: tuple[str, ...] = ("Services", "Consulting", "Hardware")
    """onlyoffice: the portal's invoice items."""
    taxes: tuple[str, ...] = ("VAT 19%:19", "VAT 7%:7")
    """onlyoffice: the portal's taxes, as NAME:RATE."""
    sent_invoices: str | None = None
    """onlyoffice: regex of invoice numbers that become Sent once created (not Draft)."""

    def __post_init__(self) -> None:
        self.faults = tuple(self.faults)
        unknown = [f for f in self.faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
        for name in ("fault_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate needs at least one fault to inject")
        for name in ("stall_seconds", "latency"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be at least 1")
        if self.rate_window <= 0:
            raise ValueError("rate_window must be positive")
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.reset_style not in RESET_STYLES:
            raise ValueError(f"reset_style must be one of {', '.join(RESET_STYLES)}")
        if self.refuse_keys is not None:
            try:
                re.compile(self.refuse_keys)
            except re.error as exc:
                raise ValueError(f"refuse_keys is not a valid regex: {exc}") from None


class Sandbox:
    """One API's dialect (`routes`) on a loopback port, with its SQLite store and counters."""

    def __init__(
        self,
        config: SandboxConfig,
        routes: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Bind the port at once (port 0: a free one), so `url` is known before serving."""
        self.config = config
        self._log = log
        self._log_lock = threading.Lock()
        self._lock = threading.Lock()  # counters, dice and quota
        self.refuse = re.compile(config.refuse_keys) if config.refuse_keys else None
        self.routes = routes
        self._reset_counters()
        self.store = Store(config.db_path)
        try:
            self._server = HttpServer((host, port), self)
        except OSError:
            self.store.close()
            raise
        self._thread: threading.Thread | None = None
        self._serving = False
        self._stopped = False

    # -- life -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API root, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> Sandbox:
        """Serve in a daemon thread and return at once; stop() ends it."""
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="payor-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until stop() is called from another or KeyboardInterrupt."""
        self._serving = True
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        """Stop serving, free the port and release a file store; records() still work."""
        if self._stopped:
            return
        self._stopped = True
        if self._serving:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- introspection ----------------------------------------------------------------------
    def records(self, kind: str) -> list[dict[str, Any]]:
        """The stored payloads of `kind` as received, in the order their keys were first written."""
        if kind not in self.routes.kinds:
            raise ValueError(f"no such kind: {kind}")
        return [json.loads(text) for text in self.store.payloads(kind)]

    def stats(self) -> dict[str, Any]:
        """Counters since start or reset: what the server saw, answered, stored and injected."""
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def reset(self) -> None:
        """Forget every record and counter, and reseed the dice, as if just started."""
        self.store.clear()
        self._reset_counters()

    def log(self, line: str) -> None:
        """Hand one line to the callback; serialized, since handler threads log concurrently."""
        if self._log is not None:
            with self._log_lock:
                self._log(line)

    def _reset_counters(self) -> None:
        with self._lock:
            self._rng = random.Random(self.config.seed)
            self._window_index = -1
            self._window_used = 0
            self._window_end_epoch = 0
            self._origin = time.monotonic()
            self._stats: dict[str, Any] = {
                "requests": 0,
                "by_status": {},
                "rows_received": 0,
                "writes": {name: 0 for name in self.routes.kinds},
                "injected": {name: 0 for name in self.config.faults},
                "rate_limited": 0,
                "stalled": 0,
                "in_flight_max": 0,
                "write_spans": {},
            }
            if getattr(self.routes, "body_stats", False):
                # what arrived that payor should never send: "" values, bodies that are no JSON
                self._stats |= {"empty_strings": {}, "malformed_bodies": 0}
            self._in_flight = 0

    # -- one request --------------------------------------------------------------------------
    def answer(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> HttpReply:
        """The reply to one API request, counted in the stats: the quota and the injected
        faults first, then the target's dialect (`routes`)."""
        route = self.routes.route(method, path)
        with self._lock:
            self._stats["requests"] += 1
            limit_headers, retry_after = (
                self._take_quota(consume=route is not None)
                if route or self._limit_headers == "always"
                else ({}, None)
            )
            fault, fault_wait, stall = (
                self._roll() if route and retry_after is None else (None, 0, False)
            )
        if route is None:
            allowed = self.routes.methods(path)
            if allowed:
                reply = self.error(405, f"use {allowed}", {"Allow": allowed})
            else:
                reply = self.error(404, f"no such endpoint: {method} {path}")
        elif retry_after is not None:
            limit, window = self._quota() or (0, 0.0)
            wait = {"Retry-After": str(retry_after)} if self._retry_after_on_quota else {}
            reply = self.error(
                429, f"rate limit exceeded, {limit} requests per {window:g} s", wait, "rate limited"
            )
        elif fault is not None:
            make_fault = getattr(self.routes, "fault", None)
            reply = make_fault(fault, fault_wait) if make_fault else injected(fault, fault_wait)
        else:
            reply = route(self, query, headers, body)
            if stall and method != "GET" and 200 <= reply.status < 300:
                reply.delay = self.config.stall_seconds
                reply.note += f", answered after {self.config.stall_seconds:g} s"
        reply.headers.update(limit_headers)

        with self._lock:
            if fault is not None:
                self._stats["injected"][fault] += 1
            if retry_after is not None:
                self._stats["rate_limited"] += 1
            if reply.delay:
                self._stats["stalled"] += 1
            if not reply.drop:
                by_status = self._stats["by_status"]
                by_status[str(reply.status)] = by_status.get(str(reply.status), 0) + 1
        return reply

    def in_flight(self, change: int) -> None:
        """An API request came in (+1) or was answered (-1): the most at once is in the stats."""
        with self._lock:
            self._in_flight += change
            self._stats["in_flight_max"] = max(self._stats["in_flight_max"], self._in_flight)

    def count(self, name: str, amount: int, kind: str | None = None) -> None:
        """Add to a counter of the stats (a dialect's rows received, writes of a kind)."""
        with self._lock:
            if kind is None:
                self._stats[name] += amount
            else:
                self._stats[name][kind] += amount
                if name == "writes":  # when a kind was first and last written, to order kinds
                    at = round(time.monotonic() - self._origin, 6)
                    span = self._stats["write_spans"].setdefault(kind, [at, at])
                    span[1] = at

    # -- the dialect's answers ------------------------------------------------------------------
    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None, note: str = ""
    ) -> HttpReply:
        """An error answer in the dialect's shape (PayorCRM's is `{"success": false, ...}`)."""
        make = getattr(self.routes, "error", None)
        reply = make(status, message) if make else HttpReply(status, failure(message))
        reply.headers.update(headers or {})
        reply.note = note or reply.note
        return reply

    def dress(self, reply: HttpReply) -> None:
        """Give an API answer that has none the quota headers, where the dialect sends them on
        every answer (also a refused body or a sandbox error)."""
        if self._limit_headers == "always" and "X-RateLimit-Limit" not in reply.headers:
            with self._lock:
                reply.headers.update(self._take_quota(consume=False)[0])

    def saw(self, method: str, path: str, data: Any) -> None:
        """Count the empty strings a request's JSON body holds, by where they were: payor leaves
        an empty cell's field out, so an `""` that arrives is the sender's, which tests see."""
        found = list(_empty_strings(data, ""))
        if not found:
            return
        where = f"{method} {re.sub(r'/[0-9]+(?=/|$)', '/{id}', path)}"
        with self._lock:
            seen = self._stats["empty_strings"]
            for name in found:
                seen[f"{where} {name}"] = seen.get(f"{where} {name}", 0) + 1

    @property
    def _limit_headers(self) -> str:
        """always | when_limited | never: which answers carry the X-RateLimit-* headers."""
        return str(getattr(self.routes, "limit_headers", "when_limited"))

    @property
    def _retry_after_on_quota(self) -> bool:
        return bool(getattr(self.routes, "retry_after_on_quota", True))

    def _quota(self) -> tuple[int, float] | None:
        """(requests, window seconds): the options', else the dialect's documented quota."""
        if self.config.rate_limit is not None:
            return self.config.rate_limit, self.config.rate_window
        return getattr(self.routes, "quota", None)

    def _take_quota(self, consume: bool = True) -> tuple[dict[str, str], int | None]:
        """X-RateLimit-* headers for this request, and Retry-After seconds if over quota;
        `consume` False only reads them (an answer that is no API request, like a 404)."""
        quota = self._quota()
        if quota is None:
            return {}, None
        limit, window = quota
        now = time.monotonic()
        index = math.floor((now - self._origin) / window)
        reset_in = max(self._origin + (index + 1) * window - now, 0.001)
        if index != self._window_index:
            self._window_index, self._window_used = index, 0
            # one Unix time for the whole window, as a server with a fixed window says it
            self._window_end_epoch = math.ceil(time.time() + reset_in)
        over = self._window_used >= limit
        if consume:
            # how far into its window the first limited request came: what the quota lets a
            # client do from there is the benchmark's measure
            self._stats.setdefault("first_quota_phase_s", round((now - self._origin) % window, 4))
            if not over:
                self._window_used += 1
        if (getattr(self.routes, "reset_style", None) or self.config.reset_style) == "epoch":
            reset = str(self._window_end_epoch)
        else:
            # to the millisecond, so a client pacing itself on Remaining: 0 loses no time
            reset = f"{reset_in:.3f}"
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(limit - self._window_used),
            "X-RateLimit-Reset": reset,
        }
        if self._limit_headers == "never":
            headers = {}
        return headers, (math.ceil(reset_in) if over and consume else None)

    def _roll(self) -> tuple[str | None, int, bool]:
        """(fault or None, its Retry-After, stall?): always four draws, so runs repeat exactly."""
        rng, config = self._rng, self.config
        hit = rng.random() < config.fault_rate
        fault = rng.choice(config.faults) if config.faults else None
        wait = 1 if rng.random() < RETRY_AFTER_ONE_SECOND else 0
        stall = rng.random() < config.stall_rate
        return (fault if hit else None), wait, stall


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; bytes, since compare_digest refuses non-ASCII str."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _empty_strings(value: Any, at: str) -> Iterator[str]:
    """Where `value` holds an empty string: `address.street`, `invoiceLines[].description`."""
    if value == "":
        yield at or "(body)"
    elif isinstance(value, dict):
        for name, inner in value.items():
            yield from _empty_strings(inner, f"{at}.{name}" if at else str(name))
    elif isinstance(value, list):
        for inner in value:
            yield from _empty_strings(inner, f"{at}[]")
