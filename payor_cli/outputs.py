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
from .readers import Table
from .summary import RejectedRow, RunSummary

REJECTED_SUFFIXES = (".csv", ".xlsx")
LEAD_COLUMNS = ["source_row", "errors"]


def check_rejected_path(path: Path) -> None:
    if path.suffix.lower() not in REJECTED_SUFFIXES:
        raise ConfigError(
            f"--rejected {path}: the file must end in .csv or .xlsx",
            "the suffix chooses the format, e.g. --rejected rejected.csv",
        )


class RejectedWriter:
    """Writes rejected rows as the source had them, led by source_row and errors.

    The header sits on the same row number as in the source, with the source's delimiter and
    encoding, so the fixed file uploads again with the very same mapping.
    """

    def __init__(self, path: Path, table: Table) -> None:
        check_rejected_path(path)
        self.path = path
        self.count = 0
        self._xlsx = path.suffix.lower() == ".xlsx"
        header = LEAD_COLUMNS + list(table.headers)
        preamble = [[f"Rows of {table.path.name} that payor rejected"]] + [[]] * (
            table.header_row - 2
        )
        preamble = preamble[: table.header_row - 1]
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._xlsx:
            import openpyxl

            self._book = openpyxl.Workbook(write_only=True)
            self._sheet = self._book.create_sheet(table.sheet or "Rejected rows")
            for line in [*preamble, header]:
                self._sheet.append(line)
        else:
            encoding = table.encoding or "utf-8-sig"
            self._file = path.open("w", encoding=encoding, errors="replace", newline="")
            self._csv = csv.writer(self._file, delimiter=table.delimiter or ",")
            self._csv.writerows([*preamble, header])

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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8", newline="\n")

    def write(self, payloads: pa.Array) -> None:
        if len(payloads):
            self._file.write("\n".join(payloads.to_pylist()))
            self._file.write("\n")

    def close(self) -> None:
        self._file.close()


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output the run could not write at its end."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror} ({path.parent})") from None
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
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def write_failure_report(
    path: Path, files: dict[str, Path], dry_run: bool, error: PayorError
) -> None:
    """The report of a run that stopped before it could count anything: zeros and the error."""
    summaries = [
        RunSummary(kind, file, dry_run, exit_code=int(error.exit_code), error=str(error))
        for kind, file in files.items()
    ]
    data: dict[str, Any] = summaries[0].as_json()
    if len(summaries) > 1:
        data = {s.kind: s.as_json() for s in summaries} | {"exit_code": int(error.exit_code)}
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
