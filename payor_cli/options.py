"""The options of payor's commands as typed objects, with nothing heavy to import.

The CLI builds its upload and sandbox flags from these fields when it starts, so this module
imports only the standard library and payor's errors: `payor --version` and Tab completion load
no pyarrow. The Python API takes the same `UploadOptions` as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from payor_cli.errors import ConfigError

_NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class UploadOptions:
    """Every option of an upload, named as on the command line (`--dry-run` is `dry_run`).

    The one definition of the upload options: the CLI makes its flags from these fields (the
    same list for `upload customers|invoices` and `upload all`), the Python API takes them as
    keyword arguments. None means "not given": the settings or the mapping decide.
    """

    config: Path | None = None
    mapping: Path | None = None
    dry_run: bool = False
    batch_size: int | None = None
    concurrency: int | None = None
    full: bool = False
    rejected: Path | None = None
    report_json: Path | None = None
    payloads: Path | None = None
    state_dir: Path | None = None
    target: str | None = None
    base_url: str | None = None
    sandbox: bool = False
    quiet: bool = False
    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    member: str | None = None
    log_file: Path | None = None

    def input_overrides(self) -> dict[str, object]:
        """--sheet, --header-row, --encoding, --delimiter, --member as the reader takes them."""
        return {
            "sheet": _sheet(self.sheet),
            "header_row": self.header_row,
            "encoding": self.encoding,
            "delimiter": _delimiter(self.delimiter),
            "member": self.member,
        }


def _sheet(value: str | int | None) -> str | int | None:
    """A sheet by name, or by its 0-based index when the text is all digits."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _delimiter(value: str | None) -> str | None:
    """A named or one-character delimiter as the reader takes it; anything else is an error."""
    if value is None:
        return None
    value = _NAMED_DELIMITERS.get(value.lower(), value)
    if len(value) != 1:
        raise ConfigError(
            f"--delimiter {value!r}: give one character, or tab / comma / semicolon / pipe"
        )
    return value


@dataclass(frozen=True)
class SandboxOptions:
    """Every option of `payor sandbox`, as given (the fault list and the onlyoffice catalogs
    as comma-separated text; None: the sandbox's defaults)."""

    port: int = 8765
    db: Path | None = None
    host: str = "127.0.0.1"
    fault_rate: float = 0.0
    faults: str = "500,502,503,429,drop"
    seed: int = 0
    stall_rate: float = 0.0
    stall_seconds: float = 0.0
    latency: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 1.0
    reset_style: str = "seconds"
    max_batch: int | None = None
    name_rows: bool = True
    refuse_keys: str | None = None
    target: str | None = None
    config: Path | None = None
    items: str | None = None
    taxes: str | None = None
    sent_invoices: str | None = None
