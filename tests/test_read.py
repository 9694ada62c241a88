"""Reading workbooks: values by defined name, totals recomputed, verdicts for every file, hostile files."""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import cells, read, spec, validate, xlsx_reader
from pipeline.model import AgencyData


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    return D.write_valid(tmp_path_factory.mktemp("valid") / "a.xlsx")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_long_tables(valid):
    batch = read.read_batch([valid], D.YEAR)
    v, t = batch.values, batch.texts
    assert list(v.columns) == read.VALUE_COLUMNS and list(t.columns) == read.TEXT_COLUMNS
    assert len(v) == len(spec.CELLS) and len(t) == len(spec.FIELDS)
    assert set(v["status"]) == {"ok"} and set(t["status"]) <= {"ok", "blank"}
    row = v[v["name"] == spec.cell_name("三", "granted", "natural")].iloc[0]
    c = spec.CELL[row["name"]]
    assert (row["agency"], row["table"], row["row"], row["column"], row["sheet"], row["cell"], row["file"]) == (
        D.AGENCIES[0].code, "三", c.row, c.column, c.sheet, c.ref, "a.xlsx")
    assert row["value"] == D.V[row["name"]]


def test_agency_data_recomputes_every_cell(valid):
    (data,) = read.read_batch([valid], D.YEAR).agency_data()
    assert isinstance(data, AgencyData)
    expected = D.totals(D.figures())
    assert dict(data.values) == expected
    money = data.values[spec.cell_name("二", "fees", "amount")]
    assert isinstance(money, Decimal) and money == Decimal("12.5")
    assert all(type(data.values[c.name]) is int for c in spec.CELLS if c.kind == "count")
    assert (data.code, data.name, data.category, data.year) == (
        D.AGENCIES[0].code, D.AGENCIES[0].name, D.AGENCIES[0].category, D.YEAR)
    assert data.fields["INFO_report_year"] == D.YEAR
    assert data.text("TXT_other_matters") == "无。"
    assert data.fields["FEE_fee_notices"] is None


def test_input_is_never_modified(valid, tmp_path):
    before = sha(valid), os.stat(valid).st_mtime_ns
    batch = read.read_batch([valid], D.YEAR)
    validate.validate(batch)
    assert (sha(valid), os.stat(valid).st_mtime_ns) == before


def test_one_broken_file_never_stops_the_others(valid, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04garbage")
    good = tmp_path / "good.xlsx"
    good.write_bytes(valid.read_bytes())
    batch = read.read_batch([bad, good], D.YEAR)
    assert [(v.file, v.status) for v in batch.files] == [("bad.xlsx", "rejected"), ("good.xlsx", "read")]
    assert [r.file for r in batch.records] == ["good.xlsx"]
    assert batch.files[0].codes == ("FILE_CORRUPT",)
    assert batch.verdicts()[0]["status"] == "rejected"


def test_zip_bomb_is_refused_before_decompression(valid, tmp_path):
    path = D.make_defect("zip_bomb", valid, tmp_path)
    with pytest.raises(xlsx_reader.Reject) as e:
        xlsx_reader.read_raw(path)
    assert e.value.code == "FILE_TOO_LARGE"


def test_declared_sizes_bound_decompression(valid, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_UNCOMPRESSED_BYTES", 1000)
    with pytest.raises(xlsx_reader.Reject) as e:
        xlsx_reader.read_raw(valid)
    assert e.value.code == "FILE_TOO_LARGE"


def test_entity_expansion_is_refused(valid, tmp_path):
    path = D.make_defect("entity_bomb", valid, tmp_path)
    with pytest.raises(xlsx_reader.Reject) as e:
        xlsx_reader.read_raw(path)
    assert e.value.code == "FILE_CORRUPT"


def test_huge_cell_is_truncated(valid, tmp_path):
    path = D.make_defect("huge_cell", valid, tmp_path)
    batch = read.read_batch([path], D.YEAR)
    row = batch.texts[batch.texts["name"] == "TXT_platform"].iloc[0]
    assert len(row["value"]) == xlsx_reader.MAX_CELL_CHARS and bool(row["truncated"])


def test_zip_encrypted_entry_flag(valid, tmp_path):
    data = bytearray(valid.read_bytes())
    # set the "encrypted" general-purpose flag bit on every central directory entry
    zf = zipfile.ZipFile(valid)
    n = len(zf.infolist())
    start = data.rfind(b"PK\x01\x02", 0)
    pos = 0
    count = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        data[pos + 8] |= 0x1
        pos += 4
        count += 1
    assert count == n and start > 0
    path = tmp_path / "enc.xlsx"
    path.write_bytes(bytes(data))
    batch = read.read_batch([path], D.YEAR)
    assert batch.files[0].codes == ("FILE_ENCRYPTED",)


def test_workbook_without_defined_names_is_read_by_position(tmp_path):
    wb = D.build()
    for name in list(wb.defined_names):
        del wb.defined_names[name]
    from pipeline import ooxml

    path = ooxml.save_workbook(wb, tmp_path / "nonames.xlsx")
    batch = read.read_batch([path], D.YEAR)
    report = validate.validate(batch)
    assert report.findings == []
    assert dict(batch.agency_data()[0].values) == D.totals(D.figures())


def test_strict_inline_and_rowless_refs_are_read():
    """Cells without r= attributes and inline strings (written by some tools) are placed correctly."""
    xml = (b'<worksheet xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main"><sheetData>'
           b'<row><c t="inlineStr"><is><t>a</t></is></c><c><v>5</v></c></row>'
           b'<row r="3"><c r="C3" t="e"><v>#REF!</v></c><c t="b"><v>1</v></c></row></sheetData></worksheet>')
    strings: list[str] = []
    cells = xlsx_reader._read_sheet(xml, [], strings, "s")
    assert cells["A1"] == xlsx_reader.RawCell("str", "a") and cells["B1"] == xlsx_reader.RawCell("num", "5")
    assert cells["C3"].type == "err" and cells["D3"].type == "bool"
    assert strings == ["a"]


@pytest.mark.skipif(D.soffice() is None and os.environ.get("CI") != "true", reason="LibreOffice not installed")
def test_libreoffice_saved_copy_reads_the_same_and_validates_clean(valid, tmp_path):
    copy = D.libreoffice_copy(valid, tmp_path / "lo")
    batch = read.read_batch([copy], D.YEAR)
    report = validate.validate(batch)
    assert [(f.code, f.cells) for f in report.findings] == []
    assert dict(batch.agency_data()[0].values) == D.totals(D.figures())
    # LibreOffice stores the totals' results: they are compared, and equal
    found = batch.values[batch.values["computed"]]
    assert found["found"].notna().all() and found["formula"].all()


def test_parallel_read_gives_the_same_batch(valid, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.xlsx"
        p.write_bytes(valid.read_bytes())
        paths.append(p)
    (tmp_path / "~$0.xlsx").write_bytes(b"x")
    paths.append(tmp_path / "~$0.xlsx")
    seen: list[Path] = []
    one = read.read_batch(paths, D.YEAR)
    two = read.read_batch(paths, D.YEAR, jobs=2, progress=seen.append)
    assert sorted(seen) == sorted(paths)
    assert [v.as_json() for v in one.files] == [v.as_json() for v in two.files]
    assert one.values.equals(two.values) and one.texts.equals(two.texts)


@pytest.mark.skipif(D.soffice() is None and os.environ.get("CI") != "true", reason="LibreOffice not installed")
def test_real_xls_is_rejected_with_save_as_advice(valid, tmp_path):
    xls = D.libreoffice_xls(valid, tmp_path / "xls")
    renamed = tmp_path / "renamed.xlsx"  # an .xls renamed by hand
    renamed.write_bytes(xls.read_bytes())
    batch = read.read_batch([xls, renamed], D.YEAR)
    assert [(v.status, v.codes) for v in batch.files] == [("rejected", ("FILE_XLS",))] * 2
    assert "另存为" in batch.files[0].reason




@given(n=st.integers(min_value=0, max_value=10**9), style=st.sampled_from(["plain", "full", "unit", "space"]))
def test_unambiguous_spellings_of_a_count_are_coerced(n, style):
    text = {"plain": str(n), "full": D._fullwidth(str(n)), "unit": f"{n}件", "space": f" {n}\u3000"}[style]
    status, value, raw = cells.parse_number(xlsx_reader.RawCell("str", text), "count")
    assert (status, value, raw) == ("coerced", n, text)


@given(text=st.text(alphabet="约不详若干~至?？", min_size=1, max_size=6))
def test_words_are_never_read_as_numbers(text):
    status, value, _ = cells.parse_number(xlsx_reader.RawCell("str", text), "count")
    assert status == "text" and value is None


def test_xml_with_a_dtd_is_refused_in_any_encoding():
    bomb = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>'
    for data in (bomb.replace("UTF-16", "UTF-8").encode("utf-8"), bomb.encode("utf-16")):
        with pytest.raises(xlsx_reader.Reject) as e:
            xlsx_reader._parse_xml(data, "x")
        assert e.value.code == "FILE_CORRUPT"
    plain = '<?xml version="1.0" encoding="UTF-16"?><a><b>字</b></a>'.encode("utf-16")
    assert xlsx_reader._parse_xml(plain, "x").find("b").text == "字"
