"""The one place that speaks HTTP to the API: one batch in, one classified answer out.

Temporary trouble (connection errors, timeouts, 429, 5xx, a 2xx saying success false) is retried
here, under the RetryPolicy; what is left for the caller is a final answer: accepted, refused
(with or without row numbers), too large, or an abort. The secret is sent in a header and never
appears in any text this module makes.

What the world may do is bounded here. No redirect is followed: a 3xx stops the run, so the
credentials go to no other host and nothing counts as delivered that the API did not answer.
An answer must come whole within the read timeout and be at most MAX_ANSWER bytes (deadline.py).
An answer that is not of the API's own shape, or cut off, is unclear: looked up where the caller
can, else sent again, never taken for an acceptance. Plain http goes to loopback only and never
through a proxy; the configured CA bundle is the one that verifies.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter

from payor_cli.contract import Answer, Credentials, Outcome, Reply, Target
from payor_cli.errors import SECRETS, AbortedError, Scrubber
from payor_cli.hosts import is_loopback
from payor_cli.send.answers import AnswerReader
from payor_cli.send.causes import failed_connection, failed_proxy
from payor_cli.send.deadline import WATCHED_POOLS, Unclear, Watcher, read_whole
from payor_cli.send.pacing import Pacer
from payor_cli.send.retry import TEMPORARY_STATUSES, Clock, RetryPolicy
from payor_cli.send.waits import RetryWaits, check_quota_reset
from payor_cli.stop import StopRequest
from payor_cli.version import VERSION

AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
"""Answers after which the server may have acted: a create is looked up before it is retried."""


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
        self.target = target
        self.pacer = Pacer(self.clock, self.notice, self.base_url)
        self._waits = RetryWaits(self.policy, self.clock, self.pacer, self.notice)
        self._scrub = Scrubber(credentials.secrets)
        self._answers = AnswerReader(self._scrub)
        self._lock = threading.RLock()
        self._local = threading.local()
        self.before_first: Callable[[], None] | None = None
        """Called once, before the first request (a target's preparations)."""
        host = urlsplit(self.base_url).hostname or ""
        self._loopback = is_loopback(host)
        """Loopback: no proxy, no ~/.netrc, no environment at all (the secret stays here)."""
        self._ca_bundle = ca_bundle
        self._said_transport = False
        self._watcher = Watcher()
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"payor/{VERSION}",
            **target.auth_headers(credentials),
        }
        """What every request carries; the secrets among them are never shown."""
        self._sessions: list[requests.Session] = []

    @property
    def retries(self) -> int:
        """Retries made so far, by every thread."""
        return self._waits.retries

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
        return getattr(self._local, "requests", 0), self._waits.thread_retries()

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
                raise self._tls_failed(exc) from None
            except (requests.ConnectionError, requests.Timeout, Unclear) as exc:
                self.pacer.answered(getattr(exc, "headers", None))
                cause, reached = self._unanswered(exc)
                if reached:  # counted as the server saw them: a refused connection is none
                    self._reached(on_wire)
                if reached and (found := self._look_up(on_ambiguous)):
                    return found
                attempt = self._waits.wait(attempt, None, url, cause, what)
                continue
            except BaseException:
                self.pacer.answered(None)
                raise
            self.pacer.answered(response.headers)
            self._reached(on_wire)
            final = self._answered(method, url, response, content, classify, on_ambiguous)
            if isinstance(final, Answer):
                return final
            attempt = self._waits.wait(attempt, response, url, final, what)

    def _answered(
        self,
        method: str,
        url: str,
        response: requests.Response,
        content: bytes,
        classify: Callable[[Reply], Answer | None],
        on_ambiguous: Callable[[], Answer | None] | None,
    ) -> Answer | str:
        """What an answer the server gave comes to: the final answer, or (a text) the cause
        to try again for; a redirect stops the run."""
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
            return answer.message
        if answer is not None:
            check_quota_reset(response.headers, self.clock, self.base_url)
            self._waits.settled()
            return answer
        cause = f"HTTP {response.status_code}"
        if 200 <= response.status_code < 300:
            cause += " with success false"
        return cause + (f" ({reply.message})" if reply.message else "")

    def _unanswered(self, exc: Exception) -> tuple[str, bool]:
        """Why a request got no answer, and whether it may have reached the server."""
        if isinstance(exc, Unclear):
            return exc.cause, True
        cause = self._connection_cause(exc)
        # a proxy that failed did not pass the request on
        unsent = (requests.ConnectTimeout, requests.exceptions.ProxyError)
        reached = not isinstance(exc, unsent) and not cause.startswith(
            ("connection refused", "host name not found")
        )
        return cause, reached

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
        with self._watcher.watching(*self.timeouts) as deadline:
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
                    raise Unclear(deadline.late()) from None
                raise
            try:
                content = read_whole(response.raw, response.headers, deadline)
            except BaseException:
                response.close()  # the connection is not reused: its answer was not read whole
                raise
            return response, content

    def _tls_failed(self, exc: requests.exceptions.SSLError) -> AbortedError:
        """The abort of a certificate that did not verify, and where to name the CA bundle."""
        return AbortedError(
            f"TLS verification failed for {self.base_url}: {self._clean(exc)}",
            "behind a TLS-inspecting proxy, set ca_bundle in the config's [api] section",
        )

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
            return f"the proxy failed ({failed_proxy(exc, self._oneline)})"
        return failed_connection(exc, self._clean)

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
        # the charset its headers name (UTF-8 when they name none)
        charset = requests.utils.get_encoding_from_headers(response.headers) or "utf-8"
        return self._answers.reply(method, response, content, charset)

    def clean(self, text: Any) -> str:
        """Text with every secret replaced by ***."""
        return self._clean(text)

    def _oneline(self, text: Any) -> str:
        return self._answers.oneline(text)

    def _clean(self, text: Any) -> str:
        return self._answers.clean(text)


def _certifi() -> str:
    return certifi.where()


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, whose connections give their socket to the request's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = WATCHED_POOLS
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
