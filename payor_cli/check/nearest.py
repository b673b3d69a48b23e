"""The known names nearest a mistyped one, for the "did you mean" of a message."""

from __future__ import annotations

import difflib


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates closest to `name`, ignoring case."""
    folded = {c.casefold(): c for c in candidates}
    exact = folded.get(name.casefold())
    if exact:
        return [exact]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=n, cutoff=0.5)
    return [folded[c] for c in close]


def did_you_mean(name: str, candidates: list[str]) -> str | None:
    """A hint "did you mean 'x'?" naming the nearest candidates; None when none is near."""
    close = suggest(name, candidates)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else None
