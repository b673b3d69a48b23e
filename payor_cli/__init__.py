"""payor: bulk uploader of accounting exports into PayorCRM, business-suite and onlyoffice.

From Python: `payor_cli.dry_run(source, kind, mapping=..., **options)` and
`payor_cli.upload(...)` take a path or a pandas DataFrame and return a `Run` (see api.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from payor_cli.version import VERSION as __version__

if TYPE_CHECKING:
    from payor_cli.api import Run, dry_run, upload

__all__ = ["Run", "__version__", "dry_run", "upload"]


def __getattr__(name: str) -> Any:
    """The Python API on first use: `payor --version` and Tab completion need no pyarrow."""
    if name in ("Run", "dry_run", "upload"):
        from payor_cli import api  # noqa: PLC0415 - the Python API loads pyarrow on first use

        return getattr(api, name)
    raise AttributeError(f"module 'payor_cli' has no attribute {name!r}")
