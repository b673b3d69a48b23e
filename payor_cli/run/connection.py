"""What a real run holds while it delivers: the state-dir and account locks, the journal, the
API client (or the embedded sandbox), and a Delivery per kind; and what a target's quota makes
the run cost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from payor_cli.contract import Credentials, Target
from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.send.client import ApiClient
from payor_cli.send.deliver import Delivery
from payor_cli.send.journal import Journal, account_id
from payor_cli.send.locks import ScopeLock, StateLock
from payor_cli.send.retry import Clock, RetryPolicy

if TYPE_CHECKING:
    from payor_cli.run.plan import Observer, Planned, Sink, UploadRequest
    from payor_cli.run.settings import Settings
    from payor_cli.schema import Kind
    from payor_cli.stop import StopRequest
    from payor_cli.summary import RunSummary


class Deliveries:
    """What a real run holds while it delivers (the locks, the journal, the API client or the
    embedded sandbox); makes each kind's Delivery."""

    def __init__(
        self,
        request: UploadRequest,
        settings: Settings,
        observer: Observer,
        stop: StopRequest,
        planned: list[Planned],
        client: ApiClient,
        journal: Journal,
    ) -> None:
        self.request = request
        self.settings = settings
        self.observer = observer
        self.stop = stop
        self.planned = planned
        self.client = client
        self.journal = journal

    def for_kind(self, kind: Kind, summary: RunSummary) -> Sink:
        """The Delivery of one kind's file, booked into its summary."""
        settings, target = self.settings, self.client.target
        names = [item.source.kind.name for item in self.planned]
        later = self.planned[names.index(kind.name) + 1 :]  # invoices, after customers
        return Delivery(
            kind,
            self.client,
            self.journal,
            summary,
            batch_size=settings.batch_size,
            full=self.request.full,
            progress=self.observer.progress,
            stop=self.stop,
            concurrency=settings.concurrency,
            requests_after=expected_requests(later, target, settings.batch_size),
        )


@contextmanager
def open_delivery(
    request: UploadRequest,
    settings: Settings,
    observer: Observer,
    stop: StopRequest,
    target: Target,
    planned: list[Planned],
) -> Iterator[Deliveries]:
    """Take the locks, open the journal and the client (starting the sandbox, if asked) for a
    real run; yields what makes each kind's Delivery, and releases it all on the way out."""
    with ExitStack() as stack:
        stack.enter_context(StateLock(settings.state_dir))
        if request.sandbox:
            base_url, api, credentials = _start_sandbox(stack, settings, observer, target)
        else:
            base_url = settings.require_base_url()
            credentials = target.credentials(settings)
            api = base_url
        # one run at a time per CRM account, whatever the state dir (exit 4 naming the other)
        scope = (target.name, scope_url(api), account_id(credentials.account))
        stack.enter_context(ScopeLock(*scope, settings.state_dir))
        client = _client(base_url, credentials, settings, observer, stop, target)
        stack.callback(client.close)
        # what the target must know first (a token, catalogs) costs nothing on a run that
        # sends nothing: it comes before the run's first request
        client.before_first = lambda: target.prepare(client, planned, settings)
        client.pacer.expect(expected_requests(planned, target, settings.batch_size))
        journal = Journal(settings.state_dir, api, account_id(credentials.account), target.name)
        stack.callback(journal.close)
        yield Deliveries(request, settings, observer, stop, planned, client, journal)


def _start_sandbox(
    stack: ExitStack, settings: Settings, observer: Observer, target: Target
) -> tuple[str, str, Credentials]:
    """The embedded sandbox, started (and stopped by `stack`): its address, its name in the
    journal, its credentials."""
    db_path = settings.state_dir / (
        "sandbox.sqlite" if target.name == "payorcrm" else f"sandbox-{target.name}.sqlite"
    )
    config = SandboxConfig(db_path=db_path)
    routes = target.sandbox_routes()
    sandbox = stack.enter_context(Sandbox(config, routes=routes).start())
    observer.notice(f"sandbox: a local {target.title} at {sandbox.url}, data in {db_path}")
    return sandbox.url, f"sandbox:{db_path}", Credentials(config.api_key, config.api_secret)


def _client(
    base_url: str,
    credentials: Credentials,
    settings: Settings,
    observer: Observer,
    stop: StopRequest,
    target: Target,
) -> ApiClient:
    """The run's API client, with the settings' timeouts, CA bundle and retries."""
    return ApiClient(
        base_url,
        credentials,
        connect_timeout=settings.connect_timeout,
        timeout=settings.timeout,
        ca_bundle=settings.ca_bundle,
        policy=RetryPolicy(max_retries=settings.max_retries, budget_s=settings.retry_budget_s),
        clock=Clock(sleep=stop.sleep),  # a wait for a retry ends when a stop is asked for
        notice=observer.notice,
        target=target,
        stop=stop,
    )


def scope_url(api: str) -> str:
    """The API as one account's scope names it: scheme and host in lower case, no default
    port, no trailing slash (HTTP://Host:443/ and https://host are one CRM)."""
    try:
        parts = urlsplit(api.strip())
        port = parts.port
    except ValueError:
        return api
    if not parts.scheme or not parts.hostname:
        return api  # the sandbox's scope, or a URL the settings refuse
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))


def expected_requests(planned: list[Planned], target: Target, batch_size: int) -> int:
    """About how many requests the run makes: an upper bound, since rows the journal knows
    unchanged are not sent."""
    return sum(
        target.requests_for(item.source.kind, item.table.rows_expected or 0, batch_size)
        for item in planned
    )


def quota_plan(planned: list[Planned], target: Target, batch_size: int) -> str | None:
    """What a target's documented quota makes the run cost, when that is over a minute."""
    if not target.hourly_quota:
        return None
    requests = expected_requests(planned, target, batch_size)
    hours = requests / target.hourly_quota
    if hours * 60 <= 1:
        return None
    whole, minutes = divmod(round(hours * 60), 60)
    took = f"{whole} h {minutes} min" if whole else f"{minutes} min"
    return (
        f"{target.name}: up to about {requests:,} requests: {took} at "
        f"{target.hourly_quota:,} an hour (its quota; unchanged rows are not sent)"
    )
