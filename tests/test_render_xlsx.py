"""全县汇总.xlsx: official layout with county totals, per-agency breakdown with a total row, year on year,
formula-safe agency text, reproducible bytes."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import openpyxl
import pytest
from test_render_data import county_batch, workspace

from pipeline import aggregate, county_xlsx, spec

L = spec.SUMMARY_LABELS


@pytest.fixture(scope="module")
def rollup():
    batch = county_batch(2024)
    batch[1] = dataclasses.replace(batch[1], name='=HYPERLINK("http://x","点我")')
    return aggregate.rollup(batch, {a.code for a in batch}, county_batch(2023, seed=1), workspace())


def test_official_sheets_hold_labels_and_county_totals(tmp_path, rollup):
    path = county_xlsx.write(rollup, tmp_path)
    assert path.name == "全县汇总.xlsx"
    wb = openpyxl.load_workbook(path)
    for table in ("二", "三", "四"):
        ws = wb[spec.SECTION[table].sheet]
        for lab in spec.LABELS:
            if lab.sheet == ws.title and not (table == "二" and spec._split_ref(lab.ref)[0] >= spec.T2_REFERENCE_COL):
                assert ws[lab.ref].value == lab.text
                if lab.merge_to:
                    assert f"{lab.ref}:{lab.merge_to}" in {str(r) for r in ws.merged_cells.ranges}
        for c in spec.table_cells(table):
            got = ws[c.ref].value
            assert (Decimal(str(got)) if c.kind == "money" else got) == rollup.totals[c.name], c.name
            assert ws[c.ref].data_type == "n"


def test_breakdown_has_one_row_per_agency_and_a_total_row(tmp_path, rollup):
    wb = openpyxl.load_workbook(county_xlsx.write(rollup, tmp_path))
    ws = wb[L["sheet_breakdown"]]
    names = [c.value for c in ws[4]][3:]
    assert names == [c.name for c in spec.CELLS]
    rows = list(ws.iter_rows(min_row=5, values_only=True))
    assert len(rows) == len(rollup.agencies) + 1
    for row, a in zip(rows, rollup.agencies):
        assert row[0] == a.code
        for name, v in zip(names, row[3:]):
            assert (Decimal(str(v)) if name in aggregate.money_cells() else v) == a.values[name]
    total = rows[-1]
    assert total[0] == L["total_row"]
    for name, v in zip(names, total[3:]):
        assert (Decimal(str(v)) if name in aggregate.money_cells() else v) == rollup.totals[name]


def test_agency_text_never_becomes_a_formula(tmp_path, rollup):
    wb = openpyxl.load_workbook(county_xlsx.write(rollup, tmp_path))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
    ws = wb[L["sheet_breakdown"]]
    assert ws["B6"].value == '=HYPERLINK("http://x","点我")' and ws["B6"].data_type == "s"


def test_year_on_year_and_completeness_sheets(tmp_path, rollup):
    wb = openpyxl.load_workbook(county_xlsx.write(rollup, tmp_path))
    ws = wb[L["sheet_yoy"]]
    rows = list(ws.iter_rows(min_row=2, max_row=1 + len(rollup.yoy), values_only=True))
    assert [r[0] for r in rows] == [y.label for y in rollup.yoy]
    assert ws.cell(row=len(rollup.yoy) + 3, column=1).value == rollup.yoy_scope()
    new = next(r for r in rows if r[0] == "新收申请")
    y = next(y for y in rollup.yoy if y.key == "new")
    assert new[1:4] == (y.current, y.previous, y.change)
    ws = wb[L["sheet_completeness"]]
    assert ws.max_row == 1 + len(rollup.completeness.entries)


def test_workbook_is_reproducible(tmp_path, rollup):
    a = county_xlsx.write(rollup, tmp_path / "a")
    b = county_xlsx.write(rollup, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
