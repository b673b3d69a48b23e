"""The APIs payor uploads to, one module each; this module knows their names and what they share.

A target is the one place that knows its API: kinds and fields, credentials and auth headers,
how a kind is sent, how answers are classified, and the sandbox dialect. Everything else in
payor (reading, mapping, validation, the sender thread, the journal, reports) is generic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa

from payor_cli.errors import AbortedError, ConfigError
from payor_cli.schema import Kind

if TYPE_CHECKING:
    from payor_cli.client import Answer, ApiClient, Reply
    from payor_cli.deliver import Pending
    from payor_cli.settings import Settings
    from payor_cli.values import Converted, Fault

DEFAULT_TARGET = "payorcrm"


class Outlet(Protocol):
    """What a kind's sender reports to (deliver.Delivery), from the sender thread."""

    batch_size: int

    def accepted(self, batch: list[Pending], ids: list[str | None] | None = None) -> None: ...

    def refused(self, pending: Pending, reason: str, kind: str = "server_rejected") -> None: ...

    def journalled(self, kind: str) -> dict[str, tuple[int, str | None]]: ...

    def unchanged(self, batch: list[Pending]) -> None: ...

    def intend(self, key: str) -> None: ...

    def open_intents(self) -> set[str]: ...

    def check_stop(self) -> None: ...

    def sending(self, batch: list[Pending]) -> None: ...

    def notice(self, text: str) -> None: ...


def journalled_ids(outlet: Outlet, kind: str) -> dict[str, int]:
    """Key -> the record's id, for the records of `kind` the journal knows with an id. An id
    that is no whole number (a journal an odd answer once filled) is as good as none: the
    record is looked up again."""
    return {
        key: int(record_id)
        for key, (_, record_id) in outlet.journalled(kind).items()
        if record_id and record_id.isascii() and record_id.isdigit()
    }


def whole_id(value: object) -> int | None:
    """An id as an API gives one: a positive whole number (not a bool, a float or a text)."""
    return value if type(value) is int and value > 0 else None


class Sender(Protocol):
    """How one kind goes to the API: a batch of pending records in, outcomes to the outlet."""

    def send(self, batch: list[Pending]) -> None: ...


class OneByOne:
    """A sender for APIs that take one record a request: each record of the batch in turn,
    and nothing new after a stop was asked for."""

    def __init__(self, kind: Kind, client: ApiClient, outlet: Outlet) -> None:
        self.kind = kind
        self.client = client
        self.outlet = outlet

    def send(self, batch: list[Pending]) -> None:
        for number, pending in enumerate(batch):
            if number:
                self.outlet.check_stop()
            self.one(pending)

    def one(self, pending: Pending) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Credentials:
    """What a target authenticates with; never shown, never stored (the journal has a hash)."""

    api_key: str
    api_secret: str | None = None
    user: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return "Credentials(***)"

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.api_secret, self.password) if s]

    @property
    def account(self) -> str:
        """What names the account in the journal (hashed there)."""
        return self.api_key or f"user:{self.user}"


class Target:
    """An API payor can upload to. Subclasses (one module each) fill in the API's facts."""

    name: str = ""
    title: str = ""
    kinds: ClassVar[dict[str, Kind]] = {}
    amount_field: str = ""
    """The field the control totals add up (invoices)."""
    currency_field: str | None = None
    credential_names: tuple[str, ...] = ("PAYOR_API_KEY",)
    """Environment variables a real run needs."""
    line_amount_fields: tuple[str, str] = ("", "")
    """The line fields whose product is a line's amount: (price, quantity)."""
    hourly_quota: int | None = None
    """Requests an hour the API allows, where its documentation says."""

    def default_line(self, record: dict[str, Converted]) -> dict[str, Converted]:
        """The one line of an invoice mapped without lines, from its record fields."""
        raise NotImplementedError

    def rules(
        self, kind: Kind, record: dict[str, Converted], lines: dict[str, Converted]
    ) -> list[tuple[str, Fault]]:
        """The API's own value rules, checked before sending: (field, rows refused)."""
        return []

    def requests_for(self, kind: Kind, rows: int, batch_size: int) -> int:
        """About how many requests `rows` rows of `kind` cost: for pacing and the estimate said
        before a run. Batch APIs: one a batch."""
        return -(-rows // batch_size)

    def credentials(self, settings: Settings) -> Credentials:
        """What a real run authenticates with, from the environment or the config."""
        return settings.require_credentials(self.credential_names)

    def prepare(self, client: ApiClient, planned: list[Any], settings: Settings) -> None:
        """Before anything is sent: what the API needs a run to know (a token, catalogs); a
        problem here is a usage error (exit 2) with nothing sent."""

    def kind(self, name: str) -> Kind:
        return self.kinds[name]

    def linked_field(self, kind: Kind) -> str | None:
        """The field of `kind` that rows of another kind point to (customers: customerno)."""
        for other in self.kinds.values():
            if other.parent and other.parent[0] == kind.name:
                return other.parent[2]
        return None

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        raise NotImplementedError

    def classify(self, reply: Reply) -> Answer | None:
        """The final word on an answer that is not temporary (429, 5xx); None when it is a
        temporary failure after all (2xx saying success false: retried). What every target
        shares is here; `answer_problem` says what the API's own 2xx looks like, `refusal`
        has the target's own 4xx."""
        from payor_cli.client import Answer

        refuse_credentials(reply, self.credential_names)
        status, data = reply.status, reply.data
        if 200 <= status < 300:
            problem = self.answer_problem(reply)
            if problem is not None:  # a captive portal's page, a proxy's empty 200: unclear
                return Answer("unclear", status, self.not_its_answer(reply, problem))
            if isinstance(data, dict) and data.get("success") is False:
                return None
            return Answer("accepted", status, data=data)
        if status == 413:
            return Answer("too_large", status, reply.message)
        answer = self.refusal(reply)
        if answer is not None:
            return answer
        raise AbortedError(
            f"unexpected answer HTTP {status} from {reply.url}: {reply.message or reply.reason}",
            "check the base URL (--base-url, PAYOR_BASE_URL, [api].base_url)",
        )

    def answer_problem(self, reply: Reply) -> str | None:
        """Why a 2xx answer is not this API's own (None: it is). Only the API's own answer is
        an acceptance; anything else leaves open whether the rows arrived. By default: a JSON
        object."""
        if not isinstance(reply.data, dict):
            return f"{reply.form}, not a JSON object"
        return None

    def not_its_answer(self, reply: Reply, problem: str) -> str:
        return f"HTTP {reply.status} that is not {self.title}'s answer: {problem}"

    def refusal(self, reply: Reply) -> Answer | None:
        """The target's answer to a 4xx that refuses rows (None: an unexpected answer)."""
        return None

    def sender(self, kind: Kind, client: ApiClient, outlet: Outlet) -> Sender:
        raise NotImplementedError

    def sandbox_routes(self) -> Any:
        """The sandbox's dialect of this API (see sandbox.py)."""
        raise NotImplementedError

    def configure(self, settings: Settings) -> None:
        """Take what the run's settings say of this API (a default invoice item)."""

    def as_sent(self, kind: Kind, payloads: pa.Array) -> pa.Array:
        """A dry run's payloads as a real run would send them, references in place of ids
        (the sender's defaults filled in). Most APIs take the payload as it is."""
        return payloads


def refuse_credentials(reply: Reply, credential_names: tuple[str, ...]) -> None:
    """401 and 403 mean wrong credentials for every target: the run aborts after one request."""
    if reply.status in (401, 403):
        raise AbortedError(
            f"the API refused the credentials (HTTP {reply.status}) at {reply.url}",
            f"check {' and '.join(credential_names)} (or the config's [api] section)",
        )


def _registry() -> dict[str, Callable[[], Target]]:
    from .business_suite import BusinessSuite
    from .onlyoffice import OnlyOffice
    from .payorcrm import PayorCrm

    return {PayorCrm.name: PayorCrm, BusinessSuite.name: BusinessSuite, OnlyOffice.name: OnlyOffice}


def target_names() -> list[str]:
    return list(_registry())


def get_target(name: str | None) -> Target:
    """The target called `name` (None: the default); an unknown name is a usage error."""
    chosen = (name or DEFAULT_TARGET).strip().lower()
    known = _registry()
    if chosen not in known:
        raise ConfigError(
            f"unknown target {name!r}",
            f"choose one of: {', '.join(known)} (--target, PAYOR_TARGET, [api].target)",
        )
    return known[chosen]()
