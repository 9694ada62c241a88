"""Units as typed: every number is read in the unit its label states (spec), an amount typed in the other money
unit is converted exactly and reported with its cell, and the report prints the converted value."""

from __future__ import annotations

import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import cells, export, read, run, spec, template, validate, workspace, xlsx_reader

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
FEES = spec.cell_name("二", "fees", "amount")
NOTICE = "FEE_fee_notice_amount"


# ---- the spec: one unit per number, from the labels -----------------------------------------------------


def test_every_number_has_the_unit_its_label_states():
    assert {c.name: c.unit for c in spec.CELLS if c.kind == "money"} == {FEES: "万元"}
    assert "（单位：万元）" in spec.CELL[FEES].column
    assert {c.unit for c in spec.CELLS if c.kind == "count"} == {"件"}
    numbers = {f.name: f.unit for f in spec.FIELDS if f.kind in ("count", "money")}
    assert numbers == {"FEE_fee_notices": "件", NOTICE: "元", "FEE_fee_collected": "元"}
    assert all(f.unit == "" for f in spec.FIELDS if f.kind not in ("count", "money"))
    cells = {c["name"]: c["unit"] for c in spec.as_json()["cells"]}
    assert cells[FEES] == "万元" and cells[spec.cell_name("三", "new", "total")] == "件"
    assert {f["name"]: f.get("unit") for f in spec.as_json()["fields"]}[NOTICE] == "元"


def test_the_template_says_each_amounts_unit():
    wb = template.build_workbook(YEAR)

    class Prompts:
        def __getitem__(self, key):
            sheet, ref = key
            dvs = [dv for dv in wb[sheet].data_validations.dataValidation if ref in dv.sqref]
            assert len(dvs) == 1, key
            return f"{dvs[0].promptTitle} {dvs[0].prompt} {dvs[0].error}"

    prompts = Prompts()
    for f in spec.FIELDS:
        if f.kind in ("count", "money"):
            assert f.unit in f.hint, f.name
            col, row = f.ref[0], f.ref[1:]
            assert wb[f.sheet][f"{chr(ord(col) + 1)}{row}"].value == f.hint  # the hint beside the input
            if f.kind == "money":
                assert f"单位：{f.unit}" in prompts[(f.sheet, f.ref)], f.name
                assert "万元" not in prompts[(f.sheet, f.ref)]
    c = spec.CELL[FEES]
    assert f"单位：{c.unit}" in prompts[(c.sheet, c.ref)]


# ---- parsing ---------------------------------------------------------------------------------------------


def _field(name: str, text: str):
    return cells.parse_field(spec.FIELD[name], xlsx_reader.RawCell("str", text))


@pytest.mark.parametrize("text, status, value", [
    ("0.5万元", "converted", Decimal(5000)), ("0.5万", "converted", Decimal(5000)),
    ("０.５万元", "converted", Decimal(5000)), ("1.23456万元", "converted", Decimal("12345.6")),
    ("50元", "coerced", Decimal(50)), ("50", "coerced", Decimal(50)), ("1,200.50元", "coerced", Decimal("1200.50")),
])
def test_a_yuan_field_reads_yuan_and_converts_wanyuan(text, status, value):
    got = _field(NOTICE, text)
    assert got[:2] == (status, value) and str(got[1]) == str(value)  # exactly: "5000", never "5000.0" or 0.5


@pytest.mark.parametrize("text, status, value", [
    ("5000元", "converted", Decimal("0.5")), ("12.5万元", "coerced", Decimal("12.5")),
    ("12.5万", "coerced", Decimal("12.5")), ("123456元", "converted", Decimal("12.3456")),
    ("3元", "converted", Decimal("0.0003")),
])
def test_a_wanyuan_cell_reads_wanyuan_and_converts_yuan(text, status, value):
    c = spec.CELL[FEES]
    got = cells.parse_number(xlsx_reader.RawCell("str", text), c.kind, c.unit)
    assert got[:2] == (status, value) and str(got[1]) == str(value)


def test_yuan_in_a_count_field_stays_text():
    assert _field("FEE_fee_notices", "50元")[:2] == ("text", None)
    assert _field("FEE_fee_notices", "5件")[:2] == ("coerced", 5)


# ---- validation: what the agency is told -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return workspace.load(D.write_workspace(tmp_path_factory.mktemp("ws") / "county"))


def _check(tmp_path: Path, values: dict | None = None, fields: dict | None = None):
    agency = D.AGENCIES[0]
    v = {**D.figures(), **(values or {})}
    f = {**D.field_values(agency, D.YEAR, v), **(fields or {})}
    path = D.write_valid(tmp_path / "x.xlsx", agency, D.YEAR, v, f)
    batch = read.read_batch([path], D.YEAR, base=tmp_path)
    return batch, validate.validate(batch)


def test_wanyuan_typed_in_the_notice_amount_is_5000_yuan_with_a_notice_at_its_cell(tmp_path):
    batch, report = _check(tmp_path, fields={"FEE_fee_charged": "是", NOTICE: "0.5万元", "FEE_fee_collected": "50元"})
    f = spec.FIELD[NOTICE]
    got = [(x.code, x.severity, x.sheet, x.cells, x.expected, x.actual) for x in report.findings]
    assert ("UNIT_CONVERTED", "warning", f.sheet, (f.ref,), "5000 元", "0.5万元") in got
    assert ("CELL_COERCED", "warning", f.sheet, (spec.FIELD["FEE_fee_collected"].ref,), "50", "50元") in got
    assert not [x for x in report.findings if x.code == "FIELD_INVALID"], got
    msg = next(x.message for x in report.findings if x.code == "UNIT_CONVERTED")
    assert f.ref in msg and "0.5万元" in msg and "5000 元" in msg and "“元”" in msg
    data = batch.agency_data()[0]
    assert data.fields[NOTICE] == Decimal(5000) and data.fields["FEE_fee_collected"] == Decimal(50)
    assert report.passed == [D.AGENCIES[0].code]  # 提示 only


def test_yuan_typed_in_the_wanyuan_cell_is_converted_with_a_notice_at_its_cell(tmp_path):
    batch, report = _check(tmp_path, values={FEES: "5000元"})
    c = spec.CELL[FEES]
    got = [(x.code, x.sheet, x.cells, x.expected, x.actual) for x in report.findings]
    assert got == [("UNIT_CONVERTED", c.sheet, (c.ref,), "0.5 万元", "5000元")]
    assert batch.agency_data()[0].values[FEES] == Decimal("0.5")


def test_yuan_in_the_wanyuan_cell_beyond_four_decimals_is_reported_in_wanyuan(tmp_path):
    _, report = _check(tmp_path, values={FEES: "5.5元"})
    got = {x.code: x.actual for x in report.findings}
    assert got == {"UNIT_CONVERTED": "5.5元", "MONEY_PRECISION": "0.00055"}


def test_yuan_in_the_count_field_is_flagged(tmp_path):
    _, report = _check(tmp_path, fields={"FEE_fee_notices": "50元"})
    got = [(x.code, x.cells, x.expected) for x in report.findings]
    assert got == [("FIELD_INVALID", (spec.FIELD["FEE_fee_notices"].ref,), "数字（件）")]


# ---- end to end: the agency's report prints the converted amount ----------------------------------------


def _docx_text(path: Path) -> str:
    doc = Document(path)
    return "\n".join([p.text for p in doc.paragraphs]
                     + [c.text for t in doc.tables for r in t.rows for c in r.cells])


def test_the_report_prints_the_converted_amount(tmp_path):
    root = tmp_path / "county"
    shutil.copytree(SAMPLE, root)
    ws = workspace.load(root)
    batch = read.read_batch(sorted(ws.year_dir(YEAR).glob("*.xlsx")), YEAR, ws)
    charged = [a for a in batch.agency_data() if a.fields.get("FEE_fee_charged") == "是"]
    assert charged, "the sample has an agency that charged fees"
    agency = charged[0]
    path = ws.year_dir(YEAR) / agency.file
    f = spec.FIELD[NOTICE]
    wb = load_workbook(path)
    wb[f.sheet][f.ref] = "0.5万元"
    wb.save(path)

    result = run.run(ws, YEAR, tmp_path / "out", jobs=1)
    assert result.exit_code == 0
    out = result.out_dir
    found = json.loads((out / export.RESULT_JSON).read_text(encoding="utf-8"))
    assert [(x["agency"], x["code"], x["sheet"], x["cells"], x["expected"], x["actual"]) for x in found] == [
        (agency.code, "UNIT_CONVERTED", f.sheet, [f.ref], "5000 元", "0.5万元")]
    report = next(p for p in out.glob("*.docx") if p.name.startswith(agency.name))
    text = _docx_text(report)
    assert "通知金额5000元" in text
    assert "通知金额0.5元" not in text
