"""What the sandbox answers with: a reply, a failure body, and the answers of injected faults
(what real gateways send, or in a dialect's own error shape)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass
class HttpReply:
    status: int
    body: Any = None
    """A JSON value, or bytes sent as they are."""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    note: str = ""
    drop: bool = False
    """Close the connection without a word, as a crashed proxy does."""
    delay: float = 0.0


def failure(message: str) -> dict[str, Any]:
    return {"success": False, "message": message}


def dialect_fault(fault: str, wait: int, error: Callable[[int, str], HttpReply]) -> HttpReply:
    """An injected fault in a dialect's own error shape (a documented API's answers, JSON,
    never a proxy's page), with Retry-After on 429 and 503."""
    if fault == "drop":
        return HttpReply(0, drop=True, note="(injected)")
    status, message = {
        "soft": (200, "temporarily unavailable"),
        "429": (429, "too many requests"),
        "500": (500, "internal server error"),
        "502": (502, "bad gateway"),
        "503": (503, "service unavailable"),
        "504": (504, "gateway time-out"),
    }[fault]
    reply = error(status, message)
    if fault in ("429", "503"):
        reply.headers["Retry-After"] = str(wait)
    reply.note = f"injected {fault}"
    return reply


def injected(fault: str, wait: int) -> HttpReply:
    """The answer of one injected fault: what real gateways and overloaded APIs send."""
    note = f"injected {fault}"
    if fault == "drop":
        return HttpReply(0, drop=True, note="(injected)")
    if fault == "soft":
        return HttpReply(200, failure("temporarily unavailable"), note=note)
    if fault == "429":
        return HttpReply(429, failure("too many requests"), {"Retry-After": str(wait)}, note=note)
    if fault == "503":
        return HttpReply(503, failure("service unavailable"), {"Retry-After": str(wait)}, note=note)
    if fault == "500":
        return HttpReply(500, failure("internal server error"), note=note)
    # 502 and 504 come from a proxy in front of the API: HTML, not JSON
    title = {"502": "502 Bad Gateway", "504": "504 Gateway Time-out"}[fault]
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return HttpReply(int(fault), page.encode(), content_type=HTML_TYPE, note=note)
