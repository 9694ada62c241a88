"""Validation outputs: 校验结果.xlsx / .json and the annotated 退回修改 copies."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import export, read, spec, validate, workspace
from pipeline import findings as F

C = spec.cell_name
INJECT = '=HYPERLINK("http://example.invalid","点我")'


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A workspace with: one agency's workbook with an R2 error + a text that looks like a formula, one clean."""
    root = D.write_workspace(tmp_path_factory.mktemp("ws") / "county")
    ws = workspace.load(root)
    a = D.AGENCIES[0]
    path = ws.year_dir(D.YEAR) / f"{a.name}{D.YEAR}年报.xlsx"
    D.write_valid(path, a, D.YEAR, D.figures())
    D.make_defect("r2_total_typed_over", path, path.parent / "tmp")
    (path.parent / "tmp" / f"{a.name}_r2_total_typed_over.xlsx").replace(path)
    (path.parent / "tmp").rmdir()
    # an amber-only cell too: "５" typed for 5
    from openpyxl import load_workbook as lw

    from pipeline import ooxml

    wb = lw(path)
    sheet, ref = spec.CELL[C("三", "new", "natural")].sheet, spec.CELL[C("三", "new", "natural")].ref
    wb[sheet][ref] = D._fullwidth(str(D.V[C("三", "new", "natural")]))
    for name in ("INFO_agency_name", "TXT_other_matters"):  # text typed as text, not a formula
        cell = wb[spec.FIELD[name].sheet][spec.FIELD[name].ref]
        cell.value = INJECT
        cell.data_type = "s"
    ooxml.save_workbook(wb, path)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in ws.files(D.YEAR)}
    batch = read.read_batch(ws.files(D.YEAR), D.YEAR, ws)
    report = validate.validate(batch, ws)
    out = tmp_path_factory.mktemp("out")
    paths = export.write_validation_outputs(report, batch, out)
    return ws, batch, report, out, paths, before


def _returned(out: Path) -> Path:
    """The one returned copy (named 未归属（…）: its agency name cell holds the injected text)."""
    (copy,) = (out / "退回修改").glob("*.xlsx")
    return copy


def test_outputs_written(run):
    _ws, _batch, _report, out, paths, _ = run
    names = sorted(p.relative_to(out).as_posix() for p in paths)
    # the agency name cell holds the injected text, not the roster's name: the workbook belongs to no agency
    # (AGENCY_CONFLICT rule), and its returned copy is named 未归属（…）
    assert names[:2] == ["校验结果.json", "校验结果.xlsx"] and len(names) == 3
    assert names[2].startswith("退回修改/未归属（") and names[2].count("/") == 1


def test_inputs_untouched(run):
    ws, *_, before = run
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in ws.files(D.YEAR)} == before


def test_json_shape_and_order(run):
    _, _, report, out, _, _ = run
    data = json.loads((out / "校验结果.json").read_text(encoding="utf-8"))
    assert len(data) == len(report.findings) > 0
    for item in data:
        assert {"file", "agency", "sheet", "cells", "code", "severity", "message", "expected", "actual"} <= set(item)
        assert item["severity"] in ("error", "warning") and isinstance(item["cells"], list)
    codes = {(d["code"], tuple(d["cells"])) for d in data}
    r2 = spec.RULE["R2.granted"]
    assert ("R2", tuple(spec.CELL[n].ref for n in r2.cells)) in codes
    assert ("CELL_COERCED", (spec.CELL[C("三", "new", "natural")].ref,)) in codes
    assert data == [f.as_json() for f in sorted(report.findings, key=lambda f: f.sort_key())]


def test_outputs_are_reproducible(run, tmp_path):
    _, batch, report, _out, paths, _ = run
    again = export.write_validation_outputs(report, batch, tmp_path)
    for p, q in zip(paths, again):
        assert p.read_bytes() == q.read_bytes(), p.name


def test_xlsx_sheets_columns_and_no_formulas(run):
    _, _, report, out, _, _ = run
    wb = load_workbook(out / "校验结果.xlsx")
    assert wb.sheetnames == ["问题清单", "单位汇总", "规则汇总"]
    ws = wb["问题清单"]
    assert tuple(c.value for c in ws[1]) == export.FINDING_COLUMNS
    assert ws.auto_filter.ref == f"A1:I{len(report.findings) + 1}"
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    # the agency's formula-looking text is there, as text
    assert any(INJECT in str(c.value) for row in ws.iter_rows() for c in row if c.value)
    summary = {r[1].value: r[3].value for r in wb["单位汇总"].iter_rows(min_row=2)}
    assert summary[D.AGENCIES[1].name] == validate.VERDICT_PASS
    assert validate.VERDICT_FAIL in summary.values()
    rules = {r[0].value: r[4].value for r in wb["规则汇总"].iter_rows(min_row=2)}
    assert rules["R2"] == 1 and rules["CELL_COERCED"] == 1


def test_returned_copy_marks_cells(run):
    _, _, _report, out, _, _ = run
    wb = load_workbook(_returned(out))
    t3 = wb[spec.T3_SHEET]
    total = t3[spec.CELL[C("三", "granted", "total")].ref]
    coerced = t3[spec.CELL[C("三", "new", "natural")].ref]
    assert total.fill.start_color.rgb == export.FILL["error"].start_color.rgb
    assert coerced.fill.start_color.rgb == export.FILL["warning"].start_color.rgb
    assert F.REGISTRY["R2"].title in total.comment.text and F.REGISTRY["CELL_COERCED"].title in coerced.comment.text
    assert "CELL_COERCED" not in coerced.comment.text  # no internal code shown to the agency
    untouched = t3[spec.CELL[C("三", "partial", "business")].ref]
    assert untouched.comment is None
    # the agency's own text stays text in the copy
    sheet, ref = spec.FIELD["TXT_other_matters"].sheet, spec.FIELD["TXT_other_matters"].ref
    assert wb[sheet][ref].value == INJECT and wb[sheet][ref].data_type == "s"


def test_no_copy_for_clean_agencies(run):
    _, _, _, out, _, _ = run
    assert not (out / "退回修改" / f"{D.AGENCIES[1].name}.xlsx").exists()


def test_safe_text_strips_control_characters():
    assert export.safe_text("a\x00b\x1fc\td") == "abc\td"


def test_return_names_are_unique_and_safe():
    taken: set[str] = set()
    assert export.return_name("a/b", "x.xlsx", taken) == "a_b_退回修改.xlsx"
    assert export.return_name("a/b", "y.xlsx", taken) == "a_b_y_退回修改.xlsx"
    assert export.return_name("c", "c.xlsx", taken, 2024) == "c_2024年度_退回修改.xlsx"  # says what it is


def test_returned_copy_lists_every_finding_first(run):
    _, _, report, out, _, _ = run
    wb = load_workbook(_returned(out))
    assert wb.sheetnames[0] == export.RETURN_SHEET
    ws = wb[export.RETURN_SHEET]
    listed = sorted((r[1].value, r[3].value) for r in ws.iter_rows(min_row=3))
    mine = [f for f in report.findings if f.file == f"{D.AGENCIES[0].name}{D.YEAR}年报.xlsx"]
    assert listed == sorted((F.REGISTRY[f.code].title, ",".join(f.cells)) for f in mine)
    # no internal code shown to the agency: in the list or in a cell's note
    # (rule numbers R1–R11 are the 填报说明's own and stay; codes such as CELL_COERCED or rule keys do not)
    internal = [c for c in F.REGISTRY if "_" in c] + [r.key for r in spec.RULES]
    shown = [str(r[1].value) for r in ws.iter_rows(min_row=3)]
    shown += [c.comment.text for sheet in wb.worksheets for row in sheet.iter_rows() for c in row if c.comment]
    assert shown and not [(code, text) for text in shown for code in internal if code in text]


def test_returned_copy_opens_on_the_list_with_one_tab_selected(run):
    _, _, _, out, _, _ = run
    wb = load_workbook(_returned(out))
    assert wb.active.title == export.RETURN_SHEET
    assert [ws.title for ws in wb.worksheets if ws.sheet_view.tabSelected] == [export.RETURN_SHEET]


def test_clean_county_writes_empty_results(tmp_path):
    ws = workspace.load(D.write_workspace(tmp_path / "county"))
    batch = read.read_batch(ws.files(D.YEAR), D.YEAR, ws)
    report = validate.validate(batch, ws)
    paths = export.write_validation_outputs(report, batch, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["校验结果.json", "校验结果.xlsx"]
    assert json.loads((tmp_path / "out" / "校验结果.json").read_text(encoding="utf-8")) == []
    wb = load_workbook(tmp_path / "out" / "校验结果.xlsx")
    assert [r[3].value for r in wb["单位汇总"].iter_rows(min_row=2)] == [validate.VERDICT_PASS] * len(D.AGENCIES)


def test_a_clean_run_says_no_findings_and_every_sheet_prints(tmp_path):
    ws = workspace.load(D.write_workspace(tmp_path / "county"))
    batch = read.read_batch(ws.files(D.YEAR), D.YEAR, ws)
    report = validate.validate(batch, ws)
    assert report.findings == []
    path = export.write_xlsx(report, tmp_path / export.RESULT_XLSX)
    wb = load_workbook(path)
    sheet = wb["问题清单"]
    assert sheet["A2"].value == export.NO_FINDINGS  # never a bare header row
    assert "A2:I2" in {str(r) for r in sheet.merged_cells.ranges}
    for ws_ in wb.worksheets:
        assert ws_.page_setup.orientation == "landscape" and int(ws_.page_setup.paperSize) == int(ws_.PAPERSIZE_A4)
        assert ws_.page_setup.fitToWidth == 1 and ws_.page_setup.fitToHeight == 0
        assert ws_.sheet_properties.pageSetUpPr.fitToPage
        assert ws_.print_title_rows == "$1:$1"
        assert f"{D.YEAR}年度" in ws_.oddHeader.center.text and ws_.title in ws_.oddHeader.center.text


def test_findings_sheet_lists_findings_when_there_are_some(run):
    _, _, report, out, _, _ = run
    sheet = load_workbook(out / export.RESULT_XLSX)["问题清单"]
    assert report.findings and sheet["A2"].value != export.NO_FINDINGS
