"""Cells and headers as other readers take them: header cells matched by their words, a NUL
in a workbook cell refusing its row only, and locked .xls and .ods files named as locked."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest
from conftest import CUSTOMER_MAPPING, write_csv
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# --- files made here, in the shapes the tools write ------------------------------------------


def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE compound file (MS-CFB, version 3) holding the named streams (each 4096 bytes or
    more, so that they live in the FAT's sectors, not the mini stream): sector 0 is the FAT,
    sector 1 the directory, then the streams."""
    end, free, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFF
    fat = [0xFFFFFFFD, end]
    placed, body = [], b""
    for name, data in streams.items():
        assert len(data) >= 4096
        data += b"\0" * (-len(data) % 512)
        start = len(fat)
        fat += [start + i + 1 for i in range(len(data) // 512 - 1)] + [end]
        placed.append((name, start, len(data)))
        body += data
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, child: int, start: int, size: int, right: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(raw), kind, 1, nostream, right, child)
            + b"\0" * 36
            + struct.pack("<IQ", start, size)
        )

    directory = entry("Root Entry", 5, 1, end, 0, nostream)
    for i, (name, start, size) in enumerate(placed):
        directory += entry(
            name, 2, nostream, start, size, i + 2 if i + 1 < len(placed) else nostream
        )
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
        + struct.pack("<9I", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0) + struct.pack("<I", free) * 108
    )  # fmt: skip
    return header + struct.pack("<128I", *fat) + directory.ljust(512, b"\0") + body


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def biff8_workbook(encrypted: bool) -> bytes:
    """A Workbook stream as Excel 97-2003 writes it: BOF of the globals, FILEPASS (RC4) when
    it is locked, then records whose bodies are ciphertext."""
    bof = _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0))
    filepass = _record(0x002F, struct.pack("<HHH", 1, 1, 1) + os.urandom(48))
    rest = b"".join(_record(0x00FC, os.urandom(1000)) for _ in range(5))
    return bof + (filepass if encrypted else b"") + rest + _record(0x000A, b"")


def locked_ods(password: str = "s3cret") -> bytes:
    """An .ods saved with a password as LibreOffice does (ODF 1.2): content.xml deflated, then
    AES-256-CBC with a PBKDF2 key, and the manifest's encryption-data saying how."""
    content = (
        b'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        b'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        b'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body>'
        b'<office:spreadsheet><table:table table:name="Sheet1"><table:table-row>'
        b"<table:table-cell><text:p>No</text:p></table:table-cell></table:table-row>"
        b"</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = squeeze.compress(content) + squeeze.flush()
    salt, iv = os.urandom(16), os.urandom(16)
    start_key = hashlib.sha256(password.encode()).digest()
    key = hashlib.pbkdf2_hmac("sha1", start_key, salt, 100_000, 32)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(deflated) + padder.finalize()) + encryptor.finalize()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    ns = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    manifest = f"""<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="{ns}" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2"
  manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"
  manifest:size="{len(content)}">
  <manifest:encryption-data manifest:checksum-type="{ns}#sha256-1k"
   manifest:checksum="{b64(hashlib.sha256(deflated[:1024]).digest())}">
   <manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc"
    manifest:initialisation-vector="{b64(iv)}"/>
   <manifest:start-key-generation
    manifest:start-key-generation-name="http://www.w3.org/2000/09/xmldsig#sha256"
    manifest:key-size="32"/>
   <manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:key-size="32"
    manifest:iteration-count="100000" manifest:salt="{b64(salt)}"/>
  </manifest:encryption-data>
 </manifest:file-entry>
</manifest:manifest>"""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", sealed)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def xlsx_with_nul(path: Path, rows: list[list[object]], marked: str) -> Path:
    """A workbook whose cell `marked` holds a NUL where the text says NUL: Excel writes the
    character as `_x0000_` (which openpyxl refuses to write)."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    plain = path.with_suffix(".plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(
                item, data.replace(marked.encode(), marked.replace("NUL", "_x0000_").encode())
            )
    return path


# --- tests -----------------------------------------------------------------------------------

ROWS = [
    ["No", "Name", "Email"],
    ["1", "Acme NUL Corp", "wile@acme.test"],
    ["2", "Globex", "hank@globex.test"],
    ["3", "Initech", "bill@initech.test"],
]


def test_a_nul_in_one_workbook_cell_rejects_that_row_only(tmp_path, dry_run):
    source = xlsx_with_nul(tmp_path / "nul.xlsx", ROWS, "Acme NUL Corp")
    run, payloads, rejected, _ = dry_run("customers", source, CUSTOMER_MAPPING)
    assert run.code == 1, run.text
    assert [p["customerno"] for p in payloads] == ["2", "3"]
    assert [r["source_row"] for r in rejected] == ["2"]
    assert "column 'Name' contains a NUL byte" in rejected[0]["errors"]


def test_a_nul_in_one_text_cell_rejects_that_row_only(tmp_path, dry_run):
    source = tmp_path / "nul.csv"
    source.write_bytes(b"No,Name,Email\n1,Acme\x00Corp,wile@acme.test\n2,Globex,hank@globex.test\n")
    run, payloads, rejected, _ = dry_run("customers", source, CUSTOMER_MAPPING)
    assert run.code == 1, run.text
    assert [p["customerno"] for p in payloads] == ["2"]
    assert [r["source_row"] for r in rejected] == ["2"]


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_a_header_broken_over_lines_is_matched_by_its_words(tmp_path, dry_run, suffix):
    rows = [["No", "Company \t\n Name", "E-mail\naddress"], ["1", "Acme", "wile@acme.test"]]
    if suffix == "csv":
        source = write_csv(tmp_path / "wrapped.csv", rows)
    else:
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        source = tmp_path / "wrapped.xlsx"
        book.save(source)
    mapping = """
[customers]
[customers.fields]
customerno = "No"
companyname = "company name"
emailaddress1 = " E-mail   address "
"""
    run, payloads, _, _ = dry_run("customers", source, mapping)
    assert run.code == 0, run.text
    assert payloads == [
        {"customerno": "1", "companyname": "Acme", "emailaddress1": "wile@acme.test"}
    ]


@pytest.mark.parametrize("name", ["locked.xls", "locked.ods"])
@pytest.mark.parametrize("command", ["init", "upload"])
def test_a_password_protected_xls_or_ods_says_so(tmp_path, payor, name, command):
    source = tmp_path / name
    if name.endswith(".xls"):
        source.write_bytes(compound_file({"Workbook": biff8_workbook(encrypted=True)}))
    else:
        source.write_bytes(locked_ods())
    (tmp_path / "m.toml").write_text(CUSTOMER_MAPPING)
    if command == "init":
        run = payor("init", "customers", source)
    else:
        run = payor("upload", "customers", source, "--mapping", tmp_path / "m.toml", "--dry-run")
    assert run.code == 2, run.text
    assert f"{name}: the workbook is password protected" in run.err
    assert "password" in run.err.partition("protected")[2]
    assert "Cannot detect file format" not in run.err and "Traceback" not in run.text


def test_a_damaged_xls_without_a_password_is_not_called_locked(tmp_path, payor):
    source = tmp_path / "damaged.xls"
    source.write_bytes(compound_file({"Workbook": biff8_workbook(encrypted=False)}))
    (tmp_path / "m.toml").write_text(CUSTOMER_MAPPING)
    run = payor("upload", "customers", source, "--mapping", tmp_path / "m.toml", "--dry-run")
    assert run.code == 2, run.text
    assert "cannot read the workbook" in run.err and "password" not in run.err
