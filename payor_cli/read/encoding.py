"""Which encoding a text file is in: BOMs, UTF-16 by its zero bytes, UTF-8, else a detector."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from payor_cli.errors import InputError

_BLOCK_BYTES = 1 << 20
_DETECT_BYTES = 64 * 1024  # the detector reads the file's first bytes only, never all of it
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The single- and double-byte encodings that accounting exports come in when they are not
# Unicode: Windows code pages, their ISO cousins, Cyrillic KOI8, Japanese and Chinese.
CANDIDATES = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "iso-8859-1", "iso-8859-2", "iso-8859-5", "iso-8859-7", "iso-8859-15", "koi8-r", "koi8-u",
    "shift_jis", "gb18030",
)  # fmt: skip
WESTERN = "cp1252"
_WESTERN_FAMILY = {"cp1252", "latin_1", "iso8859-1", "iso8859-15", "iso8859_15"}
_EVIDENCE_BYTES = 16  # fewer letters beyond ASCII than this tell the code pages apart poorly


@dataclass(frozen=True)
class Guess:
    encoding: str
    note: str | None = None
    """Set when the guess is unsure: what to do if the text looks wrong."""
    nul: bool = True
    """Whether the file may hold a NUL byte (False only when the whole file was scanned)."""


def detect_encoding(path: Path, head: bytes) -> str:
    """The encoding of a text file (see `guess_encoding`)."""
    return guess_encoding(path, head).encoding


def guess_encoding(path: Path, head: bytes, opener: Callable[[], BinaryIO] | None = None) -> Guess:
    """BOM, then UTF-16 without BOM by its zero bytes, then UTF-8 if the whole file is, else
    chardet's pick among CANDIDATES on the first bytes (cp1252 for Western text, and when
    nothing fits). chardet 7 tells cp1250 from cp1252 and Greek from Cyrillic on a few lines of
    names, where charset-normalizer scored them alike (measured on test exports)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Guess(name)
    sample = head[:4096]
    if len(sample) >= 4:
        even_zeros = sample[0::2].count(0) / len(sample[0::2])
        odd_zeros = sample[1::2].count(0) / len(sample[1::2])
        if odd_zeros > 0.3 and even_zeros < 0.05:
            return Guess("utf-16-le")
        if even_zeros > 0.3 and odd_zeros < 0.05:
            return Guess("utf-16-be")
    if _looks_binary(head):
        raise InputError(
            f"{path}: this is not a text table (CSV/TSV) nor an Excel/ODS workbook",
            "export the data as CSV or XLSX and try again",
        )
    utf8, nul = _scan(opener or (lambda: path.open("rb")))
    if utf8:
        return Guess("utf-8", nul=nul)
    return _detected(head[:_DETECT_BYTES], nul)


def _detected(sample: bytes, nul: bool) -> Guess:
    import chardet  # noqa: PLC0415 - only for files that are not Unicode

    found = chardet.detect(
        sample, include_encodings=CANDIDATES, prefer_superset=True, no_match_encoding=WESTERN
    )
    name = codecs.lookup(found["encoding"] or WESTERN).name
    if name in _WESTERN_FAMILY:
        name = WESTERN  # the Windows superset of Latin-1 and Latin-9: what Windows tools write
    try:
        sample.decode(name)
    except UnicodeDecodeError:
        name = WESTERN
    evidence = sum(1 for byte in sample if byte >= 0x80)
    note = None
    if evidence < _EVIDENCE_BYTES:
        note = (
            f"guessed from only {evidence} non-ASCII bytes; if letters look wrong, set "
            'encoding = "..." in the mapping or --encoding'
        )
    return Guess(name, note, nul)


def _looks_binary(head: bytes) -> bool:
    # a stray NUL byte in a text export is read (the cell that holds it is refused); many
    # control bytes mean a binary file
    controls = sum(head.count(bytes([c])) for c in (*range(0, 9), *range(14, 27), *range(28, 32)))
    return controls > max(8, len(head) // 100)


def _scan(opener: Callable[[], BinaryIO]) -> tuple[bool, bool]:
    """Whether the whole file is UTF-8, and whether it holds a NUL byte: one pass."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, nul = True, False
    with opener() as handle:
        while block := handle.read(_BLOCK_BYTES):
            nul = nul or b"\x00" in block
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
            if not utf8 and nul:
                break
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return utf8, nul


def has_nul(opener: Callable[[], BinaryIO]) -> bool:
    """Whether the file holds a NUL byte (one pass at disk speed; no decoding)."""
    with opener() as handle:
        while block := handle.read(_BLOCK_BYTES):
            if b"\x00" in block:
                return True
    return False
