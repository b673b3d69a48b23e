"""The files a run writes besides the journal: rejected rows, dry-run payloads, the JSON report."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from payor_cli.errors import SECRETS, ConfigError, MappingError, PayorError

# the rejected-rows file has its own module; callers keep importing it from here
from payor_cli.run.rejected import RejectedWriter, check_rejected_path  # noqa: F401
from payor_cli.summary import RunSummary
from payor_cli.whole import create_beside, same_file, write_text_whole


class OutputConflict(ConfigError):
    """An output file names an input of the run, or another output: the run stops before it
    reads or writes anything (exit 2)."""


class PayloadWriter:
    """Dry run: the objects a real run would send, as JSON Lines, in order.

    Written to a temporary file beside PATH and renamed into place at the end, so PATH holds
    a whole file or none: the old one is removed at the start, and never passes for new.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        handle, self._partial = create_beside(path)
        self._file = os.fdopen(handle, "w", encoding="utf-8", newline="\n")
        path.unlink(missing_ok=True)

    def write(self, payloads: pa.Array) -> None:
        if len(payloads):
            self._file.write("\n".join(payloads.to_pylist()))
            self._file.write("\n")

    def close(self) -> None:
        self._file.close()
        os.replace(self._partial, self.path)


def check_outputs(outputs: Iterable[tuple[str, Path]], inputs: Iterable[tuple[str, Path]]) -> None:
    """No output may be an input of the run, nor two outputs one file: compared as files
    (symlinks, hard links, case-insensitive file systems), before anything is read."""
    seen: list[tuple[str, Path]] = []
    sources = list(inputs)
    for label, path in outputs:
        for what, source in sources:
            if same_file(path, source):
                raise OutputConflict(
                    f"{label} {_both(path, source, what)}: writing it would destroy what "
                    "the run reads",
                    "write the output to another file",
                )
        for other, earlier in seen:
            if same_file(path, earlier):
                raise OutputConflict(
                    f"{label} {_both(path, earlier, f'the file of {other}')}: two outputs cannot share a file",
                    "give each output a file of its own",
                )
        seen.append((label, path))


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
        return _Scrubbed(path.open("a", encoding="utf-8"))  # type: ignore[return-value]
    except OSError as exc:
        raise ConfigError(f"cannot write the log file {path}: {exc.strerror}") from None


def _both(path: Path, other: Path, what: str) -> str:
    if str(path) == str(other):
        return f"{path} is {what}"
    return f"{path} is {what} {other} (the same file by another name)"


class _Scrubbed:
    """A text file that no secret is written to (the log: lines quote servers and errors)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, text: str) -> int:
        return self._file.write(SECRETS(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _Scrubbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


STANDARD_STREAM = "-"
"""An output path that means standard output (`--report-json -`)."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a report; `-`: to standard output."""
    try:
        text = json.dumps(SECRETS.data(data), indent=2, ensure_ascii=False) + "\n"
        if str(path) == STANDARD_STREAM:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        write_text_whole(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def write_failure_report(
    path: Path,
    files: dict[str, Path],
    dry_run: bool,
    error: PayorError,
    exit_code: int | None,
    target: str,
) -> None:
    """The report of a run that stopped before it could count anything: zeros and the error."""
    code = int(error.exit_code if exit_code is None else exit_code)
    summaries = [
        RunSummary(kind, file, dry_run, exit_code=code, error=str(error), target=target)
        for kind, file in files.items()
    ]
    data: dict[str, Any] = summaries[0].as_json()
    if len(summaries) > 1:
        data = {s.kind: s.as_json() for s in summaries} | {"exit_code": code}
    with contextlib.suppress(PayorError):
        write_json(path, data)


def write_mapping_section(path: Path, kind: str, toml: str, *, force: bool = False) -> None:
    """Write a mapping section: a new file, or appended to a config that lacks the section."""
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
        write_text_whole(path, text.rstrip("\n") + "\n\n" + toml)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(path, toml)
