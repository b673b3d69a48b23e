"""The one place that speaks HTTP to the API: one batch in, one classified answer out.

Temporary trouble (connection errors, timeouts, 429, 5xx, a 2xx saying success false) is retried
here, under the RetryPolicy; what is left for the caller is a final answer: accepted, refused
(with or without row numbers), too large, or an abort. The secret is sent in a header and never
appears in any text this module makes.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from . import __version__
from .errors import AbortedError
from .pacing import Pacer
from .retry import TEMPORARY_STATUSES, Clock, RetryPolicy, quota_spent, reset_wait, server_wait
from .targets import Credentials, Target

MAX_MESSAGE = 300
MAX_QUOTA_WAIT_S = 24 * 3600.0
"""A quota reset further away than this is a broken header, not a quota."""
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
"""Answers after which the server may have acted: a create is looked up before it is retried."""
MIN_SECRET = 4  # hiding a shorter "secret" would only garble the text


@dataclass
class Answer:
    """The final word on one request."""

    outcome: str
    """accepted | refused | too_large | missing"""
    status: int
    message: str = ""
    row_errors: dict[int, str] = field(default_factory=dict)
    """0-based position in the batch -> the server's reason, when the server names rows."""
    data: Any = None
    """The answer's JSON, for what a target reads from it (ids)."""


@dataclass
class Reply:
    """An HTTP answer as a target classifies it: status, JSON (or None), a cleaned message."""

    status: int
    data: Any
    message: str
    url: str
    reason: str = ""
    clean: Callable[[str], str] = str
    """Scrubs the secrets from a text taken from the answer."""


class ApiClient:
    """A keep-alive session to one API root; counts requests and retries as the server saw them."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        ca_bundle: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        notice: Callable[[str], None] | None = None,
        target: Target | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = (connect_timeout, timeout)
        self.policy = policy or RetryPolicy()
        self.clock = clock or Clock()
        self.notice = notice or (lambda text: None)
        self.requests = 0
        self.retries = 0
        if target is None:
            from .targets import get_target

            target = get_target(None)
        self.target = target
        self.pacer = Pacer(self.clock, self.notice, self.base_url)
        self._secrets = credentials.secrets
        self._lock = threading.RLock()
        self._local = threading.local()
        self._waited = 0.0
        self._waiting_until = 0.0
        self._last_cause: str | None = None
        self.before_first: Callable[[], None] | None = None
        """Called once, before the first request (a target's preparations)."""
        self._ca_bundle = ca_bundle
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"payor/{__version__}",
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
            session = requests.Session()
            session.trust_env = True
            if self._ca_bundle:
                session.verify = self._ca_bundle
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

    def ready(self) -> None:
        """Run the target's preparations now, if they have not run (see before_first)."""
        with self._lock:  # once, even when several threads send their first request together
            if self.before_first is not None:
                prepare, self.before_first = self.before_first, None
                prepare()

    def authorize(self, header: str, value: str) -> None:
        """Send `header: value` from now on (a token got for this run); it is a secret."""
        with self._lock:
            self.headers[header] = value
            for session in self._sessions:
                session.headers[header] = value
            self._secrets.append(value)

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
        answer that leaves open whether the server acted (a timeout, a dropped connection,
        500/502/504) it is called first, and what it finds (the record, created after all)
        is the answer; when it finds nothing the request is tried again as usual. `on_wire`
        is told each time the request reached the server (or may have).
        """
        self.ready()
        classify = classify or self.target.classify
        url = self.base_url + path
        attempt = 0
        while True:
            self.pacer.start()
            try:
                response = self.session.request(
                    method, url, data=body, params=params, timeout=self.timeouts
                )
            except requests.exceptions.SSLError as exc:
                self.pacer.answered(None)
                raise AbortedError(
                    f"TLS verification failed for {self.base_url}: {self._clean(exc)}",
                    "behind a TLS-inspecting proxy, set ca_bundle in the config's [api] section",
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.pacer.answered(None)
                cause = self._connection_cause(exc)
                reached = not isinstance(exc, requests.ConnectTimeout) and not cause.startswith(
                    ("connection refused", "host name not found")
                )
                if reached:  # counted as the server saw them: a refused connection is none
                    self._reached(on_wire)
                if reached and on_ambiguous is not None and (found := on_ambiguous()):
                    return found
                attempt = self._wait_before_retry(attempt, None, url, cause, what)
                continue
            except BaseException:
                self.pacer.answered(None)
                raise
            self.pacer.answered(response.headers)
            self._reached(on_wire)
            ambiguous = response.status_code in AMBIGUOUS_STATUSES and on_ambiguous is not None
            if ambiguous and (found := on_ambiguous()):
                return found
            answer = self._classify(response, classify)
            if answer is not None:
                self._check_quota_reset(response)
                self._last_cause = None
                return answer
            cause = f"HTTP {response.status_code}"
            if 200 <= response.status_code < 300:
                cause += " with success false"
            text = self._message(response)
            cause += f" ({text})" if text else ""
            attempt = self._wait_before_retry(attempt, response, url, cause, what)

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
        chain = _chain(exc)
        names = " ".join(f"{type(e).__name__} {e}" for e in chain)
        if "ConnectionRefused" in names or "Connection refused" in names:
            return "connection refused (nothing listens there)"
        if "NameResolution" in names or "gaierror" in names or "Name or service" in names:
            return "host name not found (DNS)"
        if "RemoteDisconnected" in names or "ConnectionReset" in names or "aborted" in names:
            return "connection dropped by the server"
        return f"connection failed ({self._clean(_first_line(chain[-1]))})"

    # -- answers ------------------------------------------------------------------------------
    def _classify(
        self, response: requests.Response, classify: Callable[[Reply], Answer | None]
    ) -> Answer | None:
        """The final answer, or None when the failure is temporary."""
        status = response.status_code
        if status in TEMPORARY_STATUSES:
            return None
        reply = Reply(
            status,
            self._json(response),
            self._message(response),
            response.url.split("?")[0],
            response.reason or "",
            self._clean,
        )
        return classify(reply)

    def clean(self, text: Any) -> str:
        """Text with every secret replaced by ***."""
        return self._clean(text)

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _message(self, response: requests.Response) -> str:
        data = self._json(response)
        text = ""
        if isinstance(data, dict):
            for key in ("message", "error", "detail", "errors"):
                if data.get(key):
                    value = data[key]
                    text = (
                        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    )
                    break
        elif response.text:
            text = response.text
            if "html" in response.headers.get("Content-Type", "").lower():
                # a proxy's error page: its title says it all ("502 Bad Gateway")
                title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
                text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        return self._clean(" ".join(text.split())[:MAX_MESSAGE])

    def _clean(self, text: Any) -> str:
        text = str(text)
        for secret in self._secrets:
            if len(secret) >= MIN_SECRET:
                text = text.replace(secret, "***")
        return text

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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:MAX_MESSAGE] if lines else type(exc).__name__


def _seconds(value: float) -> str:
    return f"{value:,.0f} s" if value < 1e12 else "forever"


def _short(cause: str) -> str:
    """The cause without its explanation in parentheses: "connection refused"."""
    return cause.split(" (")[0]
