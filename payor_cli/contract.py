"""What the engine and every target share: the answer, the reply, a pending record, the outlet
a sender reports to, the transport it calls, and the Target a plug-in fills in.

The ground floor: a target depends on this module (and the value rules), never on a stage; the
engine knows this contract, never a concrete API.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from .errors import AbortedError
from .rows import Chunk, RejectedRow, RowError
from .schema import Kind
from .values import Converted, Fault

MAX_MESSAGE = 300
"""A text from a server is cut to this many characters before it is shown or stored."""


class Outcome(StrEnum):
    """What one request came to."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    """The server refused rows (with or without naming them)."""
    TOO_LARGE = "too_large"
    """413: the batch is cut smaller and sent again."""
    MISSING = "missing"
    """404 of a record looked up or updated by id."""
    FORBIDDEN = "forbidden"
    FOUND = "found"
    """A look-up after an unclear answer found the record: created after all."""
    UNCLEAR = "unclear"
    """A 2xx that is not of the API's own shape: the client looks the record up or sends it
    again; callers never see it."""


@dataclass
class Answer:
    """The final word on one request."""

    outcome: Outcome
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
    """Scrubs the secrets from a text taken from the answer (before it is cut or re-spaced)."""
    method: str = ""
    form: str = ""
    """What the body is, in a few words: "a JSON object", "an HTML page ('Sign in')"."""

    def short(self, text: Any) -> str:
        """A text from the answer as a message: scrubbed first, then on one line and cut."""
        return one_line(text, self.clean)


def one_line(text: Any, clean: Callable[[str], str]) -> str:
    """A server's text as a message: scrubbed, on one line, printable, cut to MAX_MESSAGE (and
    scrubbed again: a cut may leave a piece of a secret that the whole text hid)."""
    return clean(printable(" ".join(clean(text).split())[:MAX_MESSAGE]))


def printable(text: str) -> str:
    """A server's text with its control and format characters (an escape sequence for the
    operator's terminal, a right-to-left override) shown as U+FFFD: it goes to a terminal."""
    return "".join(
        "\ufffd" if unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n" else c for c in text
    )


@dataclass
class Pending:
    """A valid row waiting to be sent, with what is needed to report or journal it."""

    row: int
    payload: bytes
    """The JSON object, UTF-8 encoded, as it goes on the wire."""
    key: str
    fingerprint: int
    chunk: Chunk
    offset: int
    link: str | None
    amount: int | None
    currency: str | None
    members: list[int] | None = None
    """The offsets of all the record's rows, where a record spans rows."""
    sent: bool = False
    batch: int = -1
    """The number of the batch it went out in."""
    settled: bool = False
    """The server's answer is booked: accepted or refused."""
    accepted: bool = False

    @property
    def size(self) -> int:
        """The rows this record was made of."""
        return len(self.members) if self.members else 1

    def rejected(self, reason: str, kind: str = "server_rejected") -> list[RejectedRow]:
        """The record's rows, refused for `reason` (all of them, where it spans rows)."""
        text = f"refused by the server: {reason}" if kind == "server_rejected" else reason
        found = []
        for offset in self.members or [self.offset]:
            row = self.chunk.first_row + offset
            cells = [column[offset].as_py() for column in self.chunk.columns]
            found.append(
                RejectedRow(row, [RowError(row, None, None, kind, text)], cells, self.link)
            )
        return found

    def data(self) -> dict:
        """The payload as an object, for targets that reshape it (ids for references)."""
        return json.loads(self.payload)


class Transport(Protocol):
    """What a sender calls to reach its API (client.ApiClient): one request, one final answer."""

    headers: dict[str, str]

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
    ) -> Answer: ...

    def post(
        self, path: str, body: bytes, what: str, on_wire: Callable[[], None] | None = None
    ) -> Answer: ...

    def authorize(self, header: str, value: str) -> None: ...

    def ready(self) -> None: ...


class TargetSettings(Protocol):
    """What a target reads of the run's settings (settings.Settings)."""

    api_key: str | None
    api_user: str | None
    api_password: str | None
    invoice_item: str | None

    def require_credentials(self, names: tuple[str, ...]) -> Credentials: ...


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

    def __init__(self, kind: Kind, client: Transport, outlet: Outlet) -> None:
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

    def credentials(self, settings: TargetSettings) -> Credentials:
        """What a real run authenticates with, from the environment or the config."""
        return settings.require_credentials(self.credential_names)

    def prepare(self, client: Transport, planned: list[Any], settings: TargetSettings) -> None:
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
        refuse_credentials(reply, self.credential_names)
        status, data = reply.status, reply.data
        if 200 <= status < 300:
            problem = self.answer_problem(reply)
            if problem is not None:  # a captive portal's page, a proxy's empty 200: unclear
                return Answer(Outcome.UNCLEAR, status, self.not_its_answer(reply, problem))
            if isinstance(data, dict) and data.get("success") is False:
                return None
            return Answer(Outcome.ACCEPTED, status, data=data)
        if status == 413:
            return Answer(Outcome.TOO_LARGE, status, reply.message)
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

    def sender(self, kind: Kind, client: Transport, outlet: Outlet) -> Sender:
        raise NotImplementedError

    def sandbox_routes(self) -> Any:
        """The sandbox's dialect of this API (see sandbox.py)."""
        raise NotImplementedError

    def configure(self, settings: TargetSettings) -> None:
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
