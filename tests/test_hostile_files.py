"""Workbooks built to hurt: a stray cell at the grid's far corner, references outside Excel's
grid, zip bombs. Each is one line and exit 2, before a reader allocates for it; the process
never aborts nor fills the memory. The workbooks are written part by part with zipfile.
"""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pytest
from conftest import CUSTOMER_MAPPING, write_mapping

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
    'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
    'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
    'formats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships"><sheets><sheet name="Kunden" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
    'formats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)
TABLE = '<row r="1">{}</row><row r="2">{}</row><row r="3">{}</row>'.format(
    *(
        "".join(
            f'<c r="{col}{row}" t="inlineStr"><is><t>{text}</t></is></c>' for col, text in cells
        )
        for row, cells in (
            (1, [("A", "No"), ("B", "Email"), ("C", "Name")]),
            (2, [("A", "C1"), ("B", "a@x.example"), ("C", "Alpha")]),
            (3, [("A", "C2"), ("B", "b@x.example"), ("C", "Beta")]),
        )
    )
)


def cell(ref: str, text: str = "x", attribute: str = 'r="{}"') -> str:
    return f'<c {attribute.format(ref)} t="inlineStr"><is><t>{text}</t></is></c>'


def workbook(path: Path, rows: str = "", before: str = "", padding: bytes = b"") -> Path:
    """An XLSX of one sheet "Kunden": the table above, `rows` after it (and `before` it),
    and `padding` written between its rows."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                + (before + TABLE).encode()
            )
            for start in range(0, len(padding), 1 << 20):
                sheet.write(padding[start : start + (1 << 20)])
            sheet.write((rows + "</sheetData></worksheet>").encode())
    return path


@pytest.fixture
def check(tmp_path: Path, payor):
    """Dry-run a workbook as customers; the run, and its error lines."""
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)

    def run(source: Path, *extra: str):
        result = payor("upload", "customers", source, "--mapping", mapping, "--dry-run", *extra)
        errors = [line for line in result.err.splitlines() if " error: " in line]
        assert "Traceback" not in result.text and "panicked" not in result.text, result.text
        return result, errors

    return run


def test_a_stray_cell_at_the_grids_last_cell_is_named_not_a_crash(tmp_path, check):
    source = workbook(tmp_path / "kunden.xlsx", '<row r="1048576">' + cell("XFD1048576") + "</row>")
    run, errors = check(source)
    assert run.code == 2, run.text
    assert len(errors) == 1, run.err
    assert "spans A1:XFD1048576" in errors[0]
    assert "delete the stray cell at XFD1048576" in errors[0]


def test_a_stray_cell_inside_an_early_row_is_found_by_its_own_reference(tmp_path, check):
    # the <row> says 3, the cell says the last row: calamine places a cell by its reference
    source = workbook(tmp_path / "kunden.xlsx", '<row r="4">' + cell("ZZ1048000") + "</row>")
    run, errors = check(source)
    assert run.code == 2, run.text
    assert "spans A1:ZZ1048000" in errors[0] and "ZZ1048000" in errors[0]


@pytest.mark.parametrize(
    "attribute", ['r\t=\t"{}"', "r='{}'", 'r = "{}"'], ids=["tabs", "single-quotes", "spaces"]
)
def test_a_stray_reference_written_as_xml_allows_is_found_too(tmp_path, check, attribute):
    rows = '<row r="1048576">' + cell("XFD1048576", attribute=attribute) + "</row>"
    source = workbook(tmp_path / "kunden.xlsx", rows.replace("<c r", "<c\tr"))
    run, errors = check(source)
    assert run.code == 2, run.text
    assert "delete the stray cell at XFD1048576" in errors[0]


@pytest.mark.parametrize(
    ("rows", "before", "named"),
    [
        ('<row r="4">' + cell("XFE4") + "</row>", "", "XFE4"),
        ('<row r="4">' + cell("ZZZZZZZZ4") + "</row>", "", "ZZZZZZZZ4"),
        ("", '<row r="-1">' + cell("A-1") + "</row>", "-1"),
        ('<row r="4">' + cell("A99999999") + "</row>", "", "A99999999"),
    ],
    ids=["column-past-XFD", "column-of-8-letters", "negative-row", "row-past-the-last"],
)
def test_a_reference_outside_excels_grid_is_one_line_and_exit_2(
    tmp_path, check, rows, before, named
):
    source = workbook(tmp_path / "kunden.xlsx", rows, before=before)
    run, errors = check(source)
    assert run.code == 2, run.text
    assert len(errors) == 1, run.err
    assert f"cell reference {named!r} outside Excel's grid" in errors[0]


def test_a_header_cell_past_the_grid_is_refused_before_the_header_is_read(tmp_path, check):
    source = workbook(tmp_path / "kunden.xlsx", before='<row r="1">' + cell("ZZZZZZZ1") + "</row>")
    run, errors = check(source)
    assert run.code == 2, run.text
    assert "'ZZZZZZZ1' outside Excel's grid" in errors[0]


def test_a_zip_bomb_of_blank_space_is_refused_by_its_packing_ratio(tmp_path, check):
    source = workbook(tmp_path / "kunden.xlsx", padding=b" " * (48 << 20))
    assert source.stat().st_size < 1 << 20  # 48 MB of XML in well under 1 MB
    run, errors = check(source)
    assert run.code == 2, run.text
    assert "'xl/worksheets/sheet1.xml' would unpack to 48 MB" in errors[0]
    assert "zip bomb" in errors[0]


def test_blank_padding_mixed_with_noise_to_pack_less_tightly_is_refused_too(tmp_path, check):
    noise = random.Random(7)
    block = bytearray(b"\n" * (1 << 20))
    padding = bytearray()
    for _ in range(20):  # 2% noise in a comment: packs ~40:1, under the ratio limit
        for spot in range(0, len(block), 50):
            block[spot] = noise.choice(b"abcdefghijklmnopqrstuvwxyz0123456789")
        padding += block
    source = workbook(tmp_path / "kunden.xlsx", padding=b"<!--" + bytes(padding) + b"-->")
    ratio = (20 << 20) / source.stat().st_size
    assert 10 < ratio < 100, ratio
    run, errors = check(source)
    assert run.code == 2, run.text
    assert "padded with megabytes of blank space" in errors[0]


def test_a_far_cell_within_the_limit_is_read(tmp_path, check):
    # 52 columns x 20,000 rows of grid: within the budget, the stray row is an empty row
    source = workbook(tmp_path / "kunden.xlsx", '<row r="20000">' + cell("AZ20000") + "</row>")
    run, errors = check(source)
    assert run.code == 0, run.text
    assert errors == []
    assert "2 valid" in run.text


def test_a_stray_cell_in_a_workbook_inside_a_zip_archive_is_refused(tmp_path, check):
    inner = workbook(tmp_path / "kunden.xlsx", '<row r="1048576">' + cell("XFD1048576") + "</row>")
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        packed.write(inner, "kunden.xlsx")
    os.remove(inner)
    run, errors = check(archive)
    assert run.code == 2, run.text
    assert "delete the stray cell at XFD1048576" in errors[0]


def test_init_refuses_a_stray_cell_the_same_way(tmp_path, payor):
    source = workbook(tmp_path / "kunden.xlsx", '<row r="1048576">' + cell("XFD1048576") + "</row>")
    run = payor("init", "customers", source)
    assert run.code == 2, run.text
    assert "delete the stray cell at XFD1048576" in run.err
    assert "Traceback" not in run.text and "panicked" not in run.text


def test_cells_without_references_widen_the_grid_as_calamine_places_them(tmp_path, check):
    # a cell may leave out its reference and take the column after the one before it: a row
    # of 16,400 such cells and one cell on the last row span the whole grid, and more
    unnamed = '<c t="inlineStr"><is><t>x</t></is></c>' * 16_400
    rows = f'<row r="4">{unnamed}</row><row r="1048576">{cell("A1048576")}</row>'
    run, errors = check(workbook(tmp_path / "kunden.xlsx", rows))
    assert run.code == 2, run.text
    assert "a row holds 16,400 cells that name no reference" in errors[0]


def test_an_archived_csv_of_blank_lines_is_refused_before_it_is_read_for_minutes(tmp_path, check):
    archive = tmp_path / "export.zip"
    with (
        zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed,
        packed.open("customers.csv", "w", force_zip64=True) as member,
    ):
        member.write(b"No,Email,Name\nC1,a@x.example,Alpha\n")
        for _ in range(48):
            member.write(b"\n" * (1 << 20))  # 48 million empty rows in ~50 KB
    run, errors = check(archive)
    assert run.code == 2, run.text
    assert "'customers.csv' would unpack to 48 MB" in errors[0] and "zip bomb" in errors[0]
