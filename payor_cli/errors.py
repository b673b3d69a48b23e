"""Exit codes and the typed errors that end a run (every module raises these, only cli.py
exits), and the scrubber that keeps secrets out of every text that leaves the process."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from enum import IntEnum
from typing import Any
from urllib.parse import quote, quote_plus


class ExitCode(IntEnum):
    """The process exit codes of the contract."""

    OK = 0
    ROWS_REJECTED = 1
    USAGE = 2
    ABORTED = 3
    LOCKED = 4


class PayorError(Exception):
    """An error that ends the run with a clear message and a fixed exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        # an error's text may quote a server's answer or an exception: never a secret
        message = SECRETS(message)
        hint = SECRETS(hint) if hint is not None else None
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        # one line, so a cron mail or a log grep shows the whole story
        return self.message if not self.hint else f"{self.message}; {self.hint}"


class InputError(PayorError):
    """The input file cannot be read as a table (exit 2)."""


class MappingError(PayorError):
    """The mapping does not fit the schema or the file (exit 2)."""


class ConfigError(PayorError):
    """Settings or credentials are missing or wrong (exit 2)."""


class AbortedError(PayorError):
    """Delivery stopped: auth refused, server unreachable, retries exhausted (exit 3)."""

    exit_code = ExitCode.ABORTED


class LockedError(PayorError):
    """Another run holds the state dir's lock (exit 4)."""

    exit_code = ExitCode.LOCKED


MIN_SECRET = 4
MIN_PIECE = 8
"""The shortest piece of a secret a cut message may keep that is hidden as the secret."""
"""Hiding a shorter "secret" (or a shorter piece of one) would only garble the text."""
HIDDEN = "***"
_CUT = r"(?:…|\.\.\.)"
"""What a message cut short often ends with: a piece of a secret before it is a piece."""


class Scrubber:
    """Hides secrets in any text: as they are, in the forms a server or a library writes them
    (JSON- and URL-encoded, HTML-escaped, Python repr, re-spaced), and the pieces a message cut
    short keeps (a secret's start at the text's end or before "…", its end at the start).

    Scrub the raw text first, then cut or re-space it: a cut or a re-spacing can split a
    secret into text that no longer looks like it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._whole: re.Pattern[str] | None = None
        self._pieces: list[re.Pattern[str]] = []
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Hide these too from now on."""
        with self._lock:
            fresh = [s for s in secrets if s and len(s) >= MIN_SECRET and s not in self._secrets]
            if not fresh:
                return
            self._secrets.extend(fresh)
            forms = sorted({f for s in self._secrets for f in _forms(s)}, key=len, reverse=True)
            # a server may echo a secret in another case (API_KEY=KEY-...): hidden as well
            self._whole = re.compile("|".join(map(re.escape, forms)), re.IGNORECASE)
            self._pieces = [_pieces_of(form) for form in forms if len(form) > MIN_PIECE]

    @property
    def secrets(self) -> list[str]:
        return list(self._secrets)

    def __call__(self, text: Any) -> str:
        """`text` (made a str) with every secret and every piece of one replaced by ***."""
        text = str(text)
        whole = self._whole
        if whole is None or not text:
            return text
        text = whole.sub(HIDDEN, text)
        for pattern in self._pieces:
            text = pattern.sub(HIDDEN, text)
        return text

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys too) scrubbed."""
        if self._whole is None:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _forms(secret: str) -> set[str]:
    """The ways a secret is written in a text that quotes it."""
    forms = {secret, " ".join(secret.split()), repr(secret)[1:-1]}
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    for encoded in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)}
    forms |= {html.escape(secret), html.escape(secret, quote=False)}
    return {f for f in forms if len(f) >= MIN_SECRET}


def _pieces_of(form: str) -> re.Pattern[str]:
    """A secret's start (half of it, and MIN_PIECE characters, or more) at a text's end or
    before "…", and its end at a text's start or after "…": what a cut leaves of it. A shorter
    piece tells little of the secret, and hiding it would garble ordinary words and paths."""
    least = max(MIN_PIECE, len(form) // 2)
    later = ""
    for char in reversed(form[least:-1]):  # abcd(?:e(?:f)?)?: the longest start first
        later = f"(?:{re.escape(char)}{later})?"
    start = re.escape(form[:least]) + later
    earlier = ""
    for char in form[1:-least]:  # (?:(?:b)?c)?defg: the longest end first
        earlier = f"(?:{earlier}{re.escape(char)})?"
    end = earlier + re.escape(form[-least:])
    return re.compile(rf"{start}(?={_CUT}|\Z)|(?:\A|(?<=…)|(?<=\.\.\.)){end}", re.IGNORECASE)


SECRETS = Scrubber()
"""Every secret this process was given (the settings' credentials, tokens got in a run): what
leaves the process through a report, a rejected-rows file, a log or an error is scrubbed."""
