"""Which encoding a text file is in: BOMs, UTF-16 by its zero bytes, UTF-8, else a detector."""

from __future__ import annotations

import codecs
from pathlib import Path

from payor_cli.errors import InputError

_BLOCK_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(path: Path, head: bytes) -> str:
    """BOM, then UTF-16 without BOM by its zero bytes, then UTF-8 if the whole file is, else cp1252.

    Accounting exports come in few encodings: SAP writes UTF-16LE with a BOM, Excel's
    "CSV UTF-8" writes a UTF-8 BOM, older Windows tools write cp1252 (a superset of the printable
    latin-1 range). A statistical guesser adds nothing for these and is wrong on short files.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if len(sample) >= 4:
        even_zeros = sample[0::2].count(0) / len(sample[0::2])
        odd_zeros = sample[1::2].count(0) / len(sample[1::2])
        if odd_zeros > 0.3 and even_zeros < 0.05:
            return "utf-16-le"
        if even_zeros > 0.3 and odd_zeros < 0.05:
            return "utf-16-be"
    if b"\x00" in head or _looks_binary(head):
        raise InputError(
            f"{path}: this is not a text table (CSV/TSV) nor an Excel/ODS workbook",
            "export the data as CSV or XLSX and try again",
        )
    if _is_utf8(path):
        return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _looks_binary(head: bytes) -> bool:
    controls = sum(head.count(bytes([c])) for c in (*range(0, 9), *range(14, 27), *range(28, 32)))
    return controls > max(8, len(head) // 100)


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
