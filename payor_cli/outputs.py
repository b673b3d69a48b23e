"""The files a run writes besides the journal: rejected rows, dry-run payloads, the JSON report."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from .errors import ConfigError, MappingError, PayorError
from .readers import REJECTED_LEAD, Table
from .summary import RejectedRow, RunSummary

REJECTED_SUFFIXES = (".csv", ".xlsx")


def check_rejected_path(path: Path) -> None:
    if path.suffix.lower() not in REJECTED_SUFFIXES:
        raise ConfigError(
            f"--rejected {path}: the file must end in .csv or .xlsx",
            "the suffix chooses the format, e.g. --rejected rejected.csv",
        )


class RejectedWriter:
    """Writes rejected rows as the source had them, led by source_row and errors.

    The header is on the first line, whatever row the source had it on, so any CSV reader
    finds it; a text source's delimiter and encoding are kept. payor knows the file again by
    its first two columns, so the fixed file uploads with the very same mapping.
    """

    def __init__(self, path: Path, table: Table | None = None) -> None:
        check_rejected_path(path)
        self.path = path
        self.count = 0
        self._xlsx = path.suffix.lower() == ".xlsx"
        header = list(REJECTED_LEAD) + (list(table.headers) if table else [])
        if self._xlsx:
            import openpyxl

            self._book = openpyxl.Workbook(write_only=True)
            self._sheet = self._book.create_sheet(
                (table.sheet if table else None) or "Rejected rows"
            )
            self._sheet.append(header)
        else:
            encoding = (table.encoding if table else None) or "utf-8-sig"
            self._file = path.open("w", encoding=encoding, errors="replace", newline="")
            self._csv = csv.writer(
                self._file, delimiter=(table.delimiter if table else None) or ","
            )
            self._csv.writerow(header)
            self._file.flush()  # even a run killed at once leaves a file that says it is new

    def write(self, rows: list[RejectedRow]) -> None:
        for row in rows:
            line = [row.row, row.message, *row.cells]
            if self._xlsx:
                self._sheet.append([_xlsx_cell(self._sheet, v) for v in line])
            else:
                self._csv.writerow(line)
        self.count += len(rows)

    def close(self) -> None:
        if self._xlsx:
            self._book.save(self.path)
        else:
            self._file.close()


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    # openpyxl turns a text starting with "=" into a formula; a rejected cell stays the text it was
    if isinstance(value, str) and value.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        return cell
    return value


class PayloadWriter:
    """Dry run: the objects a real run would send, as JSON Lines, in order."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", newline="\n")

    def write(self, payloads: pa.Array) -> None:
        if len(payloads):
            self._file.write("\n".join(payloads.to_pylist()))
            self._file.write("\n")

    def close(self) -> None:
        self._file.close()


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output the run could not write at its end."""
    folder = path.parent
    if not folder.is_dir():
        # a typo in a folder name should not silently grow a new tree of folders
        raise ConfigError(
            f"cannot write {path}: the folder {folder} does not exist",
            "create it first, or name a file in an existing folder",
        )
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a folder", "name a file")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"cannot write {path}: permission denied", "choose a place you can write")


def open_log(path: Path) -> IO[str]:
    check_writable(path)
    try:
        return path.open("a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the log file {path}: {exc.strerror}") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a report."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def write_failure_report(
    path: Path,
    files: dict[str, Path],
    dry_run: bool,
    error: PayorError,
    exit_code: int | None = None,
) -> None:
    """The report of a run that stopped before it could count anything: zeros and the error."""
    code = int(error.exit_code if exit_code is None else exit_code)
    summaries = [
        RunSummary(kind, file, dry_run, exit_code=code, error=str(error))
        for kind, file in files.items()
    ]
    data: dict[str, Any] = summaries[0].as_json()
    if len(summaries) > 1:
        data = {s.kind: s.as_json() for s in summaries} | {"exit_code": code}
    with contextlib.suppress(PayorError):
        write_json(path, data)


def write_mapping_section(path: Path, kind: str, toml: str, *, force: bool = False) -> None:
    """Write a mapping section: a new file, or appended to a config that lacks the section."""
    import tomllib

    if path.exists() and not force:
        try:
            existing = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MappingError(f"{path} exists and is not valid TOML ({exc})") from None
        if kind in existing:
            raise MappingError(
                f"{path} already has a [{kind}] section",
                "remove it, write to another file with -o, or overwrite the file with --force",
            )
        text = path.read_text(encoding="utf-8")
        path.write_text(text.rstrip("\n") + "\n\n" + toml, encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml, encoding="utf-8")
