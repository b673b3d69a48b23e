"""Raw HTTP to a sandbox dialect started in-process: the dialect tests speak to it as any
client of the documented API would, with `requests`, and read what it stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from payor_cli.sandbox.server import Sandbox, SandboxConfig

KEY, SECRET, USER = "dialect-key-7Hq", "dialect-secret-2Wp", "dialect-user"


@dataclass
class Answer:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@contextmanager
def servers(routes_class: type) -> Iterator[Any]:
    """A maker of started sandboxes speaking one dialect; all are stopped at the end."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        config = SandboxConfig(api_key=KEY, api_secret=SECRET, api_user=USER, **options)
        server = Sandbox(config, routes=routes_class())
        started.append(server.start())
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def call(
    server: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    params: dict[str, str] | None = None,
) -> Answer:
    """One request: `body` as JSON (or `raw` bytes as they are), `headers` as given (no auth
    unless the caller puts it there)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json", **(headers or {})}
    answer = requests.request(
        method, server.url + path, data=data, headers=sent, params=params, timeout=10
    )
    return Answer(answer.status_code, answer.headers, answer.text)
