"""Why a connection failed, in a few words, read from the exception and those inside it
(requests wraps urllib3, which wraps the OS error)."""

from __future__ import annotations

import re
from collections.abc import Callable

from payor_cli.contract import MAX_MESSAGE


def failed_connection(exc: BaseException, clean: Callable[[str], str]) -> str:
    """Refused, name not found, dropped, or the failure's own first line (`clean`ed)."""
    chain = _chain(exc)
    names = " ".join(f"{type(e).__name__} {e}" for e in chain)
    if "ConnectionRefused" in names or "Connection refused" in names:
        return "connection refused (nothing listens there)"
    if "NameResolution" in names or "gaierror" in names or "Name or service" in names:
        return "host name not found (DNS)"
    if "RemoteDisconnected" in names or "ConnectionReset" in names or "aborted" in names:
        return "connection dropped by the server"
    return f"connection failed ({_first_line(chain[-1], clean)})"


def failed_proxy(exc: BaseException, oneline: Callable[[str], str]) -> str:
    """What a proxy that failed said, or where to look (`oneline`: the message's wording)."""
    names = " ".join(f"{type(e).__name__} {e}" for e in _chain(exc))
    if "ConnectionRefused" in names or "Connection refused" in names:
        return "connection refused: check HTTPS_PROXY"
    found = re.search(r"Tunnel connection failed: ([^'\")]*)", names)
    return oneline(found.group(1)) if found else "check HTTPS_PROXY"


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
