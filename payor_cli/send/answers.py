"""What an API's answer says, as a target reads it: its JSON, what its body is in a few words,
and the server's own words; every text scrubbed of the secrets before it is cut or re-spaced."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from payor_cli.contract import Reply, one_line
from payor_cli.errors import SECRETS, Scrubber

MAX_DEPTH = 64
"""JSON nested deeper than this is not the API's answer (theirs are a few levels deep)."""


class HttpAnswer(Protocol):
    """What is read here of an HTTP answer besides its body (requests' Response is one)."""

    status_code: int
    headers: Any
    url: str
    reason: Any


class AnswerReader:
    """Reads the client's answers and words its messages, with the secrets hidden."""

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub

    def clean(self, text: Any) -> str:
        """Text with every secret replaced by ***."""
        return SECRETS(self.scrub(text))

    def oneline(self, text: Any) -> str:
        """A text as a message: scrubbed, on one line, printable, cut (and scrubbed again)."""
        return one_line(text, self.clean)

    def reply(self, method: str, response: HttpAnswer, content: bytes, charset: str) -> Reply:
        """The answer as a target reads it: its JSON (None when it is none), a clean message.
        `charset`: the body's, as its headers name it."""
        data, form = self._parsed(response, content, charset)
        return Reply(
            response.status_code,
            data,
            self._message(response, content, charset, data, form),
            response.url.split("?")[0],
            self.oneline(response.reason or ""),
            self.clean,
            method,
            form,
        )

    def _parsed(self, response: HttpAnswer, content: bytes, charset: str) -> tuple[Any, str]:
        """The JSON of an answer (None: there is none) and what the body is, in a few words."""
        if not content.strip():
            return None, "an empty body" if response.status_code != 204 else "no body (HTTP 204)"
        try:
            data = json.loads(content)
        except RecursionError:
            return None, f"JSON nested more than {MAX_DEPTH} levels deep"
        except ValueError:
            return None, self._not_json(response, content, charset)
        if _depth(data) > MAX_DEPTH:
            return None, f"JSON nested more than {MAX_DEPTH} levels deep"
        kinds = {dict: "a JSON object", list: "a JSON list", str: "a JSON string"}
        return data, kinds.get(type(data), f"a JSON {type(data).__name__}")

    def _not_json(self, response: HttpAnswer, content: bytes, charset: str) -> str:
        text = self.clean(_text(content, charset))
        if "html" in response.headers.get("Content-Type", "").lower() or re.match(
            r"\s*<(!doctype|html)", text, re.IGNORECASE
        ):
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            named = self.oneline(title.group(1))[:80] if title else ""
            return f"an HTML page ({named!r})" if named else "an HTML page"
        return f"text that is not JSON ({self.oneline(text)[:60]!r})"

    def _message(
        self, response: HttpAnswer, content: bytes, charset: str, data: Any, form: str
    ) -> str:
        """The server's own words: its JSON's message, else a proxy page's title, else the
        text. Scrubbed on the raw text first, then re-spaced and cut (and scrubbed again)."""
        if isinstance(data, dict):
            for key in ("message", "error", "detail", "errors"):
                value = data.get(key)
                if value:
                    if not isinstance(value, str):  # scrubbed before JSON escapes the secret
                        value = json.dumps(self.scrub.data(value), ensure_ascii=False)
                    return self.oneline(value)
            return ""
        if data is not None or not content.strip():
            return ""
        text = self.clean(_text(content, charset))
        if form.startswith("an HTML page"):
            # a proxy's error page: its title says it all ("502 Bad Gateway")
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        return self.oneline(text)


def _text(content: bytes, charset: str) -> str:
    """The body as text, in the charset its headers name (UTF-8 when that is no codec)."""
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
