"""The one place that speaks HTTP to the API: one batch in, one classified answer out.

Temporary trouble (connection errors, timeouts, 429, 5xx, a 2xx saying success false) is retried
here, under the RetryPolicy; what is left for the caller is a final answer: accepted, refused
(with or without row numbers), too large, or an abort. The secret is sent in a header and never
appears in any text this module makes.

What the world may do is bounded here. No redirect is followed: a 3xx stops the run, so the
credentials go to no other host and nothing counts as delivered that the API did not answer.
An answer must come whole within the read timeout and be at most MAX_ANSWER bytes. An answer
that is not of the API's own shape, or cut off, is unclear: looked up where the caller can,
else sent again, never taken for an acceptance. Plain http goes to loopback only and never
through a proxy; the configured CA bundle is the one that verifies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter

from payor_cli.contract import MAX_MESSAGE, Answer, Credentials, Outcome, Reply, Target, printable
from payor_cli.errors import SECRETS, AbortedError, Scrubber
from payor_cli.hosts import is_loopback
from payor_cli.send.pacing import Pacer
from payor_cli.send.retry import (
    TEMPORARY_STATUSES,
    Clock,
    RetryPolicy,
    quota_spent,
    reset_wait,
    server_wait,
)
from payor_cli.stop import StopRequest
from payor_cli.version import VERSION

MAX_ANSWER = 8 * 1024 * 1024
"""Bytes read of an answer at most: the APIs' answers are small (a listing page of 100
customers is tens of kB); more is not the API's answer, and is never held in memory."""
MAX_DEPTH = 64
"""JSON nested deeper than this is not the API's answer (theirs are a few levels deep)."""
READ_CHUNK = 64 * 1024
MAX_QUOTA_WAIT_S = 24 * 3600.0
"""A quota reset further away than this is a broken header, not a quota."""
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
"""Answers after which the server may have acted: a create is looked up before it is retried."""


class _Unclear(Exception):
    """The request reached the server but its answer is not one: late, cut off, too large."""

    def __init__(self, cause: str, headers: Any = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.headers = headers


class ApiClient:
    """A keep-alive session to one API root; counts requests and retries as the server saw them."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        target: Target,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        ca_bundle: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        notice: Callable[[str], None] | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = (connect_timeout, timeout)
        self.policy = policy or RetryPolicy()
        self.clock = clock or Clock()
        self.notice = notice or (lambda text: None)
        self.stop = stop
        """A stop asked for: no new request goes out (those in flight get their timeout)."""
        self.requests = 0
        self.retries = 0
        self.target = target
        self.pacer = Pacer(self.clock, self.notice, self.base_url)
        self._scrub = Scrubber(credentials.secrets)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._waited = 0.0
        self._waiting_until = 0.0
        self._last_cause: str | None = None
        self.before_first: Callable[[], None] | None = None
        """Called once, before the first request (a target's preparations)."""
        host = urlsplit(self.base_url).hostname or ""
        self._loopback = is_loopback(host)
        """Loopback: no proxy, no ~/.netrc, no environment at all (the secret stays here)."""
        self._ca_bundle = ca_bundle
        self._said_transport = False
        self._watcher = _Watcher()
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"payor/{VERSION}",
            **target.auth_headers(credentials),
        }
        """What every request carries; the secrets among them are never shown."""
        self._sessions: list[requests.Session] = []

    @property
    def session(self) -> requests.Session:
        """This thread's keep-alive session: requests' sessions are not made to be shared by
        threads that send at the same time."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            # the environment's proxies and CA bundle count for a remote API only: plain http
            # to this machine never goes through a proxy (it would carry the secret in clear)
            session.trust_env = not self._loopback
            session.auth = _NoNetrc()  # ~/.netrc must not replace the API's own credentials
            adapter = _WatchedAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with self._lock:
                session.headers.update(self.headers)
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._watcher.close()

    def ready(self) -> None:
        """Run the target's preparations now, if they have not run (see before_first)."""
        with self._lock:  # once, even when several threads send their first request together
            if not self._said_transport:
                self._said_transport = True
                self._say_transport()
            if self.before_first is not None:
                prepare, self.before_first = self.before_first, None
                prepare()

    def authorize(self, header: str, value: str) -> None:
        """Send `header: value` from now on (a token got for this run); it is a secret."""
        with self._lock:
            self.headers[header] = value
            for session in self._sessions:
                session.headers[header] = value
            self._scrub.add(value)
            SECRETS.add(value)

    def thread_counts(self) -> tuple[int, int]:
        """Requests and retries made by the calling thread so far."""
        return getattr(self._local, "requests", 0), getattr(self._local, "retries", 0)

    def post(
        self, path: str, body: bytes, what: str, on_wire: Callable[[], None] | None = None
    ) -> Answer:
        """POST one JSON body (`what` it holds: "500 customers"), classified by the target."""
        return self.send("POST", path, body=body, what=what, on_wire=on_wire)

    def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        classify: Callable[[Reply], Answer | None] | None = None,
        on_ambiguous: Callable[[], Answer | None] | None = None,
        on_wire: Callable[[], None] | None = None,
    ) -> Answer:
        """One request; retry what is temporary; return the final answer or abort.

        `on_ambiguous` is for a request that must not be repeated blindly (a create): after an
        answer that leaves open whether the server acted (a timeout, a dropped connection, an
        answer cut off, too large or not of the API's shape, 500/502/504) it is called first,
        and what it finds (the record, created after all) is the answer; when it finds nothing
        the request is tried again as usual. `on_wire` is told each time the request reached
        the server (or may have).
        """
        self.ready()
        classify = classify or self.target.classify
        url = self.base_url + path
        attempt = 0
        while True:
            self.pacer.start()
            try:
                response, content = self._exchange(method, url, body, params)
            except requests.exceptions.SSLError as exc:
                self.pacer.answered(None)
                raise AbortedError(
                    f"TLS verification failed for {self.base_url}: {self._clean(exc)}",
                    "behind a TLS-inspecting proxy, set ca_bundle in the config's [api] section",
                ) from None
            except (requests.ConnectionError, requests.Timeout, _Unclear) as exc:
                self.pacer.answered(getattr(exc, "headers", None))
                if isinstance(exc, _Unclear):
                    cause, reached = exc.cause, True
                else:
                    cause = self._connection_cause(exc)
                    # a proxy that failed did not pass the request on
                    unsent = (requests.ConnectTimeout, requests.exceptions.ProxyError)
                    reached = not isinstance(exc, unsent) and not cause.startswith(
                        ("connection refused", "host name not found")
                    )
                if reached:  # counted as the server saw them: a refused connection is none
                    self._reached(on_wire)
                if reached and (found := self._look_up(on_ambiguous)):
                    return found
                attempt = self._wait_before_retry(attempt, None, url, cause, what)
                continue
            except BaseException:
                self.pacer.answered(None)
                raise
            self.pacer.answered(response.headers)
            self._reached(on_wire)
            if 300 <= response.status_code < 400:
                raise self._redirected(response, url)
            ambiguous = response.status_code in AMBIGUOUS_STATUSES
            if ambiguous and (found := self._look_up(on_ambiguous)):
                return found
            reply = self._reply(method, response, content)
            answer = classify(reply) if response.status_code not in TEMPORARY_STATUSES else None
            if answer is not None and answer.outcome is Outcome.UNCLEAR:
                # an answer that is not the API's: the server may or may not have acted
                if found := self._look_up(on_ambiguous):
                    return found
                attempt = self._wait_before_retry(attempt, response, url, answer.message, what)
                continue
            if answer is not None:
                self._check_quota_reset(response)
                self._last_cause = None
                return answer
            cause = f"HTTP {response.status_code}"
            if 200 <= response.status_code < 300:
                cause += " with success false"
            cause += f" ({reply.message})" if reply.message else ""
            attempt = self._wait_before_retry(attempt, response, url, cause, what)

    def _look_up(self, on_ambiguous: Callable[[], Answer | None] | None) -> Answer | None:
        """What the server did after all, by the caller's look-up; after a stop was asked for
        none is made (the run ends now; the next run looks up before it creates)."""
        if on_ambiguous is None:
            return None
        if self.stop is not None:
            self.stop.check()
        return on_ambiguous()

    def _exchange(
        self, method: str, url: str, body: bytes | None, params: dict[str, str] | None
    ) -> tuple[requests.Response, bytes]:
        """Send the request and read its whole answer, within the deadline and the size limit.

        The read timeout bounds the whole answer, not each wait for a byte: a server trickling
        a byte a second is cut off when it is up (the watcher shuts the socket down)."""
        connect, read = self.timeouts
        deadline = _Deadline(time.monotonic() + connect + read, read)
        self._watcher.add(deadline)
        _current.deadline = deadline
        try:
            try:
                response = self.session.request(
                    method,
                    url,
                    data=body,
                    params=params,
                    timeout=self.timeouts,
                    allow_redirects=False,
                    stream=True,
                    verify=self._ca_bundle or True,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if deadline.expired and not isinstance(exc, requests.exceptions.SSLError):
                    raise _Unclear(self._late()) from None
                raise
            try:
                content = self._read(response, deadline)
            except BaseException:
                response.close()  # the connection is not reused: its answer was not read whole
                raise
            return response, content
        finally:
            _current.deadline = None
            deadline.detach()
            self._watcher.remove(deadline)

    def _read(self, response: requests.Response, deadline: _Deadline) -> bytes:
        headers = response.headers
        declared = headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > MAX_ANSWER:
            raise _Unclear(_too_large(int(declared)), headers)
        parts: list[bytes] = []
        size = 0
        try:
            # decoded as read, each read at most READ_CHUNK bytes: a gzip bomb is no bomb here
            while chunk := response.raw.read1(READ_CHUNK, decode_content=True):
                if deadline.expired:
                    raise _Unclear(self._late(), headers)
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise _Unclear(_too_large(), headers)
                parts.append(chunk)
        except urllib3.exceptions.DecodeError:
            raise _Unclear(
                "an answer that cannot be decoded (its Content-Encoding is broken)", headers
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                raise _Unclear(self._late(), headers) from None
            raise _Unclear(
                "the answer was cut off (the connection ended in the middle of it)", headers
            ) from None
        if deadline.expired:  # the socket was shut at the deadline: what came is not whole
            raise _Unclear(self._late(), headers)
        return b"".join(parts)

    def _late(self) -> str:
        return f"no whole answer within {self.timeouts[1]:g} s (read timeout)"

    def _redirected(self, response: requests.Response, url: str) -> AbortedError:
        location = response.headers.get("Location")
        where = f"to {self._oneline(location)}" if location else "without a Location"
        return AbortedError(
            f"{url} answered HTTP {response.status_code}, a redirect {where}: payor follows no "
            "redirect (the credentials would go along, and a redirected upload is not delivered)",
            "set the base URL to the address the API answers at itself "
            "(--base-url, PAYOR_BASE_URL, [api].base_url)",
        )

    def _reached(self, on_wire: Callable[[], None] | None) -> None:
        with self._lock:
            self.requests += 1
        self._local.requests = getattr(self._local, "requests", 0) + 1
        if on_wire is not None:
            on_wire()

    def _connection_cause(self, exc: Exception) -> str:
        """What went wrong, in a few words: refused, name not found, dropped, timed out."""
        if isinstance(exc, requests.ConnectTimeout):
            return f"no connection within {self.timeouts[0]:g} s (connect timeout)"
        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeouts[1]:g} s (read timeout)"
        if isinstance(exc, requests.exceptions.ProxyError):
            return f"the proxy failed ({self._proxy_cause(exc)})"
        chain = _chain(exc)
        names = " ".join(f"{type(e).__name__} {e}" for e in chain)
        if "ConnectionRefused" in names or "Connection refused" in names:
            return "connection refused (nothing listens there)"
        if "NameResolution" in names or "gaierror" in names or "Name or service" in names:
            return "host name not found (DNS)"
        if "RemoteDisconnected" in names or "ConnectionReset" in names or "aborted" in names:
            return "connection dropped by the server"
        return f"connection failed ({_first_line(chain[-1], self._clean)})"

    def _proxy_cause(self, exc: Exception) -> str:
        names = " ".join(f"{type(e).__name__} {e}" for e in _chain(exc))
        if "ConnectionRefused" in names or "Connection refused" in names:
            return "connection refused: check HTTPS_PROXY"
        found = re.search(r"Tunnel connection failed: ([^'\")]*)", names)
        return self._oneline(found.group(1)) if found else "check HTTPS_PROXY"

    def _say_transport(self) -> None:
        """Say once how an https API is reached: the CA bundle that verifies, and the proxy."""
        if not self.base_url.startswith("https://"):
            return
        if self._ca_bundle:
            bundle = f"{self._ca_bundle} ([api].ca_bundle)"
        else:
            names = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if not self._loopback else ()
            chosen = next((n for n in names if os.environ.get(n)), None)
            bundle = f"{os.environ[chosen]} ({chosen})" if chosen else f"{_certifi()} (certifi)"
        text = f"TLS: certificates checked against {bundle}"
        if not self._loopback:
            proxies = requests.utils.get_environ_proxies(self.base_url)
            proxy = requests.utils.select_proxy(self.base_url, proxies)
            if proxy:
                parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
                self._scrub.add(parts.password)
                text += f"; through the proxy {parts.hostname}:{parts.port or 'default port'}"
        self.notice(text)

    # -- answers ------------------------------------------------------------------------------
    def _reply(self, method: str, response: requests.Response, content: bytes) -> Reply:
        """The answer as a target reads it: its JSON (None when it is none), a clean message."""
        data, form = self._parsed(response, content)
        return Reply(
            response.status_code,
            data,
            self._message(response, content, data, form),
            response.url.split("?")[0],
            self._oneline(response.reason or ""),
            self._clean,
            method,
            form,
        )

    def clean(self, text: Any) -> str:
        """Text with every secret replaced by ***."""
        return self._clean(text)

    def _parsed(self, response: requests.Response, content: bytes) -> tuple[Any, str]:
        """The JSON of an answer (None: there is none) and what the body is, in a few words."""
        if not content.strip():
            return None, "an empty body" if response.status_code != 204 else "no body (HTTP 204)"
        try:
            data = json.loads(content)
        except RecursionError:
            return None, f"JSON nested more than {MAX_DEPTH} levels deep"
        except ValueError:
            return None, self._not_json(response, content)
        if _depth(data) > MAX_DEPTH:
            return None, f"JSON nested more than {MAX_DEPTH} levels deep"
        kinds = {dict: "a JSON object", list: "a JSON list", str: "a JSON string"}
        return data, kinds.get(type(data), f"a JSON {type(data).__name__}")

    def _not_json(self, response: requests.Response, content: bytes) -> str:
        text = self._clean(_text(response, content))
        if "html" in response.headers.get("Content-Type", "").lower() or re.match(
            r"\s*<(!doctype|html)", text, re.IGNORECASE
        ):
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            named = self._oneline(title.group(1))[:80] if title else ""
            return f"an HTML page ({named!r})" if named else "an HTML page"
        return f"text that is not JSON ({self._oneline(text)[:60]!r})"

    def _message(self, response: requests.Response, content: bytes, data: Any, form: str) -> str:
        """The server's own words: its JSON's message, else a proxy page's title, else the
        text. Scrubbed on the raw text first, then re-spaced and cut (and scrubbed again)."""
        if isinstance(data, dict):
            for key in ("message", "error", "detail", "errors"):
                value = data.get(key)
                if value:
                    if not isinstance(value, str):  # scrubbed before JSON escapes the secret
                        value = json.dumps(self._scrub.data(value), ensure_ascii=False)
                    return self._oneline(value)
            return ""
        if data is not None or not content.strip():
            return ""
        text = self._clean(_text(response, content))
        if form.startswith("an HTML page"):
            # a proxy's error page: its title says it all ("502 Bad Gateway")
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        return self._oneline(text)

    def _oneline(self, text: Any) -> str:
        return self._clean(printable(" ".join(self._clean(text).split())[:MAX_MESSAGE]))

    def _clean(self, text: Any) -> str:
        return SECRETS(self._scrub(text))

    # -- waiting ------------------------------------------------------------------------------
    def _wait_before_retry(
        self, attempt: int, response: requests.Response | None, url: str, cause: str, what: str
    ) -> int:
        tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
        if attempt >= self.policy.max_retries:
            raise AbortedError(
                f"gave up on {url} after {tries} ({self.policy.max_retries} retries): {cause}",
                "the server or network is failing; a re-run goes on from the last accepted batch",
            )
        asked = (
            server_wait(response.headers, self.clock, response.status_code)
            if response is not None
            else None
        )
        # never sooner than the backoff: "Retry-After: 0" on every answer would spend all the
        # tries in a moment
        wait = max(asked or 0.0, self.policy.backoff(attempt, self.clock))
        if asked is not None and asked > self.policy.budget_s:
            raise AbortedError(
                f"gave up on {url}: the server asks to wait {_seconds(asked)} before trying "
                f"again, more than the retry budget of {self.policy.budget_s:.0f} s ({cause})",
                "try later, or raise retry_budget_s in [upload]",
            )
        if response is not None and response.status_code == 429 and asked:
            self.pacer.hold(asked)  # every request in flight waits, not only this one
        if self._waited + self._newly_waited(wait, commit=False) > self.policy.budget_s:
            raise AbortedError(
                f"gave up on {url}: the retry budget of {self.policy.budget_s:.0f} s is spent "
                f"({cause})",
                "a re-run goes on from the last accepted batch",
            )
        retry = f"retry {attempt + 1} of {self.policy.max_retries} in {wait:.1f} s"
        if cause != self._last_cause:  # the address and the cause once, then the count
            self.notice(f"sending {what} to {url}: {cause}; {retry}")
            self._last_cause = cause
        else:
            self.notice(f"still {_short(cause)}; {retry}")
        self._newly_waited(wait, commit=True)
        self.clock.sleep(wait)  # a stop asked for ends it (Interrupted): then no retry is made
        with self._lock:
            self.retries += 1
        self._local.retries = getattr(self._local, "retries", 0) + 1
        return attempt + 1

    def _newly_waited(self, wait: float, *, commit: bool) -> float:
        """The part of a wait from now that no other request is waiting through already: the
        retry budget is the run's time spent waiting, however many requests wait at once."""
        with self._lock:
            now = self.clock.monotonic()
            fresh = max(0.0, now + wait - max(now, self._waiting_until))
            if commit:
                self._waited += fresh
                self._waiting_until = max(self._waiting_until, now + wait)
            return fresh

    def _check_quota_reset(self, response: requests.Response) -> None:
        if quota_spent(response.headers):
            wait = reset_wait(response.headers, self.clock)
            if wait and wait > MAX_QUOTA_WAIT_S:
                raise AbortedError(
                    f"{self.base_url} says its quota resets in {_seconds(wait)}: more than a day",
                    "check X-RateLimit-Reset with the API's provider; a re-run goes on from here",
                )


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those inside it (requests wraps urllib3, which wraps the OS error)."""
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack and len(found) < 20:
        current = stack.pop()
        if not isinstance(current, BaseException) or any(current is e for e in found):
            continue
        found.append(current)
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        stack.extend(current.args)
    return found


def _first_line(exc: BaseException, clean: Callable[[str], str]) -> str:
    lines = clean(str(exc)).strip().splitlines()
    return clean(lines[0][:MAX_MESSAGE]) if lines else type(exc).__name__


def _text(response: requests.Response, content: bytes) -> str:
    """The body as text, in the charset its headers name (UTF-8 when they name none)."""
    charset = requests.utils.get_encoding_from_headers(response.headers) or "utf-8"
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _depth(data: Any) -> int:
    """How deep JSON nests (counted without recursion: the data may be deeper than Python's
    stack)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, level + 1) for item in items)
    return deepest


def _too_large(declared: int | None = None) -> str:
    size = f"{declared:,} bytes, more" if declared is not None else "more"
    return (
        f"an answer of {size} than {MAX_ANSWER // (1024 * 1024)} MiB, which is not the API's "
        "(its answers are small): not read further"
    )


def _certifi() -> str:
    return certifi.where()


# -- the whole answer within the read timeout ---------------------------------------------------
_current = threading.local()
"""The deadline of the request the calling thread is making (for the connection to attach to)."""


class _Deadline:
    """When a request must be answered whole; at that moment its socket is shut down, which
    ends any read that waits on it (a trickle of bytes never lets a read timeout fire)."""

    def __init__(self, at: float, answer_within: float) -> None:
        self.at = at
        """By then the request is sent (connect + read timeout); once it is, its answer is due
        within `answer_within` seconds."""
        self.answer_within = answer_within
        self.expired = False
        self._shutdown: Callable[[int], None] | None = None
        self._lock = threading.Lock()

    def attach(self, shutdown: Callable[[int], None], *, answer: bool) -> None:
        """The socket to shut at the deadline; with `answer`, the request is sent and its
        answer is due within the read timeout from now."""
        with self._lock:
            if answer:
                self.at = time.monotonic() + self.answer_within
            self._shutdown = shutdown
            if self.expired:
                _shut(shutdown)

    def detach(self) -> None:
        with self._lock:
            self._shutdown = None

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._shutdown is not None:
                _shut(self._shutdown)


def _shut(shutdown: Callable[[int], None]) -> None:
    with contextlib.suppress(OSError):  # closed already
        shutdown(socket.SHUT_RDWR)


class _Watcher:
    """One thread a client, that expires the deadlines of the requests in flight."""

    def __init__(self) -> None:
        self._active: set[_Deadline] = set()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, deadline: _Deadline) -> None:
        with self._condition:
            self._active.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="payor-deadlines")
                self._thread.daemon = True
                self._thread.start()
            self._condition.notify()

    def remove(self, deadline: _Deadline) -> None:
        with self._condition:
            self._active.discard(deadline)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while not self._closed:
                now = time.monotonic()
                for deadline in [d for d in self._active if d.at <= now]:
                    self._active.discard(deadline)
                    deadline.expire()
                due = min((d.at for d in self._active), default=None)
                # a deadline moved later (its request was sent) is looked at again then
                self._condition.wait(None if due is None else max(0.01, due - now))


def _watch(sock: Any, *, answer: bool) -> None:
    deadline = getattr(_current, "deadline", None)
    shutdown = getattr(sock, "shutdown", None)
    if deadline is not None and shutdown is not None:
        deadline.attach(shutdown, answer=answer)


class _Watched:
    """A connection whose socket the request's deadline can shut: from the moment it is
    connected (or reused) while the request is sent, then while its answer comes."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self.sock, answer=False)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection, reused
            _watch(self.sock, answer=False)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self):  # type: ignore[no-untyped-def]
        _watch(self.sock, answer=True)
        return super().getresponse()  # type: ignore[misc]


class _WatchedConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedTlsConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, whose connections give their socket to the request's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class _Session(requests.Session):
    """requests' session, that sees no redirect at all: every request says
    allow_redirects=False, and then requests would still read a 3xx's whole body (unbounded)
    to prepare the redirect it does not follow."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class _NoNetrc(requests.auth.AuthBase):
    """No auth of requests' own: the API's headers are the credentials (with no auth set,
    requests would add a ~/.netrc entry's, replacing the API's Authorization)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def _seconds(value: float) -> str:
    return f"{value:,.0f} s" if value < 1e12 else "forever"


def _short(cause: str) -> str:
    """The cause without its explanation in parentheses: "connection refused"."""
    return cause.split(" (")[0]
