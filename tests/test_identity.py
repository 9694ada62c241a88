"""Issue 10: nothing misattributed, nothing silently misread.

An agency code typed wrong (a neighbour's) never hands one agency's figures to another; the pre-filled code and
name cannot be edited; a pre-filled workbook returned untouched is not published; a blank yes/no answer never
becomes a statement in a report. End to end on copies of the sample county.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from pipeline import export, read, render, run, spec, template, workspace
from pipeline import findings as F
from pipeline.model import VERDICT_FAIL, VERDICT_MISSING, VERDICT_PASS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
L = spec.SUMMARY_LABELS
TOWN, NEIGHBOUR = "SLX-201", "SLX-202"  # 城关镇, 东河镇: same category
CODE, NAME = spec.FIELD["INFO_agency_code"], spec.FIELD["INFO_agency_name"]


def _copy(tmp_path: Path) -> tuple[Path, workspace.Workspace]:
    root = tmp_path / "county"
    shutil.copytree(SAMPLE, root)
    return root, workspace.load(root)


def _book(root: Path, ws: workspace.Workspace, code: str, year: int = YEAR) -> Path:
    name = ws.agency(code).name
    return next(p for p in (root / str(year)).iterdir() if p.name.startswith(name))


def _edit(path: Path, values: dict[str, object]) -> None:
    wb = load_workbook(path)
    for n, v in values.items():
        f = spec.FIELD.get(n) or spec.CELL[n]
        wb[f.sheet][f.ref] = v
    wb.save(path)


def _run(root: Path, tmp_path: Path):
    ws = workspace.load(root)
    result = run.run(ws, YEAR, tmp_path / "out", jobs=1)
    out = result.out_dir
    findings = json.loads((out / export.RESULT_JSON).read_text(encoding="utf-8"))
    return ws, result, out, findings


def _report_path(out: Path, name: str) -> Path:
    return out / render.agency_filename(name, YEAR)


def _county_docx(out: Path) -> Document:
    return Document(next(p for p in out.glob("*.docx") if "全县汇总" in p.name))


def _completeness(out: Path) -> dict[str, str]:
    """全县汇总.xlsx 报送情况: agency name → status."""
    wb = load_workbook(out / "全县汇总.xlsx")
    rows = list(wb[L["sheet_completeness"]].iter_rows(min_row=2, values_only=True))
    return {r[1]: r[3] for r in rows}


def _new_total(root: Path, ws: workspace.Workspace, codes: set[str]) -> int:
    """表三 新收 总计 summed over the sample workbooks of ``codes``."""
    batch = read.read_batch(ws.files(YEAR), YEAR, ws)
    return sum(a.values["T3_new_total"] for a in batch.agency_data() if a.code in codes)


# ---- the rule ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code, name, agency, conflict, variant", [
    ("SLX-201", "示例县城关镇人民政府", "SLX-201", None, False),  # the roster's name
    ("SLX-201", "示例县城关镇人民政府 ", "SLX-201", None, False),  # normalises equal
    ("SLX-201", "城关镇人民政府", "SLX-201", None, True),  # the county left out: a variant (提示)
    ("SLX-201", "城关镇政府", "SLX-201", None, True),
    ("SLX-105", "县人社局", "SLX-105", None, True),  # an abbreviation
    ("SLX-201", "", "SLX-201", None, True),  # no name: the code's agency (提示)
    ("", "示例县城关镇人民政府", "SLX-201", None, False),  # no code: by name
    ("SLX-202", "示例县城关镇人民政府", None, ("SLX-202", "SLX-201"), False),  # the neighbour's code
    ("SLX-202", "城关镇", None, ("SLX-202", "SLX-201"), False),  # … beside a variant of the town's name
    ("SLX-101", "示例县教育局", None, ("SLX-101", "SLX-104"), False),
    ("SLX-201", "示例县卫生健康局", None, ("SLX-201", ""), False),  # clearly not 城关镇, and not on the roster
])
def test_identity_from_code_and_name(code, name, agency, conflict, variant):
    ws = workspace.load(SAMPLE)
    got = read.identify(ws, code, name)
    assert (got.agency.code if got.agency else None, got.conflict, got.variant) == (agency, conflict, variant)


# ---- a neighbour's code --------------------------------------------------------------------------------------


def test_neighbours_code_neighbour_absent_is_given_to_nobody(tmp_path):
    root, ws = _copy(tmp_path)
    town, neighbour = ws.agency(TOWN), ws.agency(NEIGHBOUR)
    others = {a.code for a in ws.agencies} - {TOWN, NEIGHBOUR}
    expected_new = _new_total(root, ws, others)
    _book(root, ws, NEIGHBOUR).unlink()
    book = _book(root, ws, TOWN)
    _edit(book, {"INFO_agency_code": NEIGHBOUR})

    ws, result, out, findings = _run(root, tmp_path)
    assert result.exit_code == 1
    (conflict,) = [f for f in findings if f["code"] == "AGENCY_CONFLICT"]
    assert conflict["severity"] == "error" and conflict["file"] == book.name
    assert conflict["sheet"] == spec.SHEET_INFO and conflict["cells"] == [CODE.ref, NAME.ref]
    for a in (town, neighbour):  # names both roster entries, code and name
        assert a.code in conflict["message"] and a.name in conflict["message"]
    assert CODE.ref in conflict["message"] and NAME.ref in conflict["message"]
    assert conflict["agency"] not in (TOWN, NEIGHBOUR)
    assert not [f for f in findings if f["code"] == "AGENCY_DUPLICATE"]
    # nobody's report, nobody passes with it
    assert not _report_path(out, town.name).exists() and not _report_path(out, neighbour.name).exists()
    status = _completeness(out)
    assert status[neighbour.name] == L["missing"] and status[town.name] == L["missing"]
    assert status[f"未归属（{town.name}）"] == L["unattributed"]
    missing = {f["agency"]: f["message"] for f in findings if f["code"] == "AGENCY_MISSING"}
    assert set(missing) == {TOWN, NEIGHBOUR} and all(book.name in m for m in missing.values())
    # the county summary: a draft, the figures of the ten others only
    doc = _county_docx(out)
    text = "\n".join(p.text for p in doc.paragraphs)
    assert text.splitlines()[0] == L["draft"]
    assert f"全县共收到政府信息公开申请{render.fmt(expected_new)}件" in text
    assert f"{L['unattributed']}、未计入汇总（1个）" in text
    # the manifest: the file is read, its verdict 有错误, under no roster agency
    m = json.loads((out / run.MANIFEST).read_text(encoding="utf-8"))
    (entry,) = [i for i in m["inputs"] if i["file"] == book.name]
    assert entry["verdict"] == VERDICT_FAIL and entry["agency"] not in (TOWN, NEIGHBOUR)
    # the returned copy marks the code cell red
    (returned,) = [p for p in (out / export.RETURN_DIR).iterdir()]
    cell = load_workbook(returned)[spec.SHEET_INFO][CODE.ref]
    assert F.REGISTRY["AGENCY_CONFLICT"].title in cell.comment.text and "AGENCY_CONFLICT" not in cell.comment.text


def test_neighbours_code_neighbour_reporting_still_passes(tmp_path):
    root, ws = _copy(tmp_path)
    town, neighbour = ws.agency(TOWN), ws.agency(NEIGHBOUR)
    book = _book(root, ws, TOWN)
    _edit(book, {"INFO_agency_code": NEIGHBOUR})

    ws, result, out, findings = _run(root, tmp_path)
    assert result.exit_code == 1
    assert [f["code"] for f in findings if f["agency"] == NEIGHBOUR] == []  # no AGENCY_DUPLICATE, nothing
    assert sorted(f["code"] for f in findings if f["severity"] == "error") == ["AGENCY_CONFLICT", "AGENCY_MISSING"]
    assert _report_path(out, neighbour.name).is_file() and not _report_path(out, town.name).exists()
    status = _completeness(out)
    assert status[neighbour.name] == L["passed"] and status[town.name] == L["missing"]
    # the neighbour's report holds its own figures, the county its own plus the other ten
    own = _new_total(root, ws, {NEIGHBOUR})
    text = "\n".join(p.text for p in _county_docx(out).paragraphs)
    assert f"全县共收到政府信息公开申请{render.fmt(_new_total(root, ws, {a.code for a in ws.agencies} - {TOWN}))}件" in text
    cells = [c.text.strip() for t in Document(_report_path(out, neighbour.name)).tables for r in t.rows
             for c in r.cells]
    assert render.fmt(own) in cells


def test_a_variant_of_the_name_is_still_the_agency_with_a_warning(tmp_path):
    root, ws = _copy(tmp_path)
    _edit(_book(root, ws, TOWN), {"INFO_agency_name": "城关镇人民政府"})
    ws, result, out, findings = _run(root, tmp_path)
    assert result.exit_code == 0
    assert [(f["code"], f["agency"], f["cells"]) for f in findings] == [("AGENCY_NAME_MISMATCH", TOWN, [NAME.ref])]
    assert _report_path(out, "城关镇人民政府").is_file()  # titled as the agency wrote its name


# ---- the code and name cells of the pre-filled workbook ----------------------------------------------------


def test_prefilled_code_and_name_are_locked_and_the_blank_says_where_the_code_comes_from(tmp_path):
    ws = workspace.load(SAMPLE)
    (path,) = [p for p in template.write_prefilled(ws, YEAR, tmp_path) if ws.agency(TOWN).name in p.name]
    sheet = load_workbook(path)[spec.SHEET_INFO]
    assert sheet.protection.sheet
    for f, value in ((CODE, TOWN), (NAME, ws.agency(TOWN).name)):
        assert sheet[f.ref].value == value and sheet[f.ref].protection.locked, f.name
    assert not sheet[spec.FIELD["INFO_preparer"].ref].protection.locked  # the rest stays editable

    blank = load_workbook(template.write_blank(tmp_path / "blank", YEAR))[spec.SHEET_INFO]
    assert not blank[CODE.ref].protection.locked and blank[CODE.ref].value is None
    hint = blank.cell(row=blank[CODE.ref].row, column=blank[CODE.ref].column + 1).value
    assert hint == CODE.hint and "名册" in hint and "预填报表" in hint


# ---- a pre-filled workbook returned untouched -------------------------------------------------------------


@pytest.mark.parametrize("code, carried", [(NEIGHBOUR, False), (TOWN, True)])
def test_untouched_prefilled_workbook_is_an_error_and_the_county_summary_a_draft(tmp_path, code, carried):
    """东河镇 carried nothing over from 2023: its untouched workbook passed before (9 × TEXT_EMPTY, exit 0).
    城关镇 carried 1 over: 上年结转 pre-filled, nothing else (R1 fails beside REPORT_UNFILLED)."""
    root, ws = _copy(tmp_path)
    agency = ws.agency(code)
    prefilled = run.write_prefilled_templates(ws, YEAR, tmp_path / "templates").paths
    (untouched,) = [p for p in prefilled if agency.name in p.name]
    book = _book(root, ws, code)
    book.unlink()
    shutil.copy(untouched, book.parent / untouched.name)
    got = read.read_batch([book.parent / untouched.name], YEAR, ws).agency_data()[0]
    assert (got.values[spec.cell_name("三", "carried_in", "total")] > 0) == carried

    ws, result, out, findings = _run(root, tmp_path)
    assert result.exit_code == 1
    errors = [(f["code"], f["agency"], f["sheet"], tuple(f["cells"])) for f in findings if f["severity"] == "error"]
    unfilled = ("REPORT_UNFILLED", code, spec.FIELD["TXT_overview"].sheet, (spec.FIELD["TXT_overview"].ref,))
    assert unfilled in errors
    if not carried:
        assert errors == [unfilled]
    (f,) = [f for f in findings if f["code"] == "REPORT_UNFILLED"]
    assert f["message"].startswith("报表未填写")
    assert not _report_path(out, agency.name).exists()
    doc = _county_docx(out)
    first = [p.text for p in doc.paragraphs if p.text.strip()][:4]
    assert first[0] == L["draft"]
    assert any(agency.name in p and L["failed"] in p for p in first)
    assert _completeness(out)[agency.name] == L["failed"]


def test_all_zero_tables_with_texts_are_not_unfilled(tmp_path):
    """An agency with nothing to count but its texts written is a real report."""
    root, ws = _copy(tmp_path)
    book = _book(root, ws, TOWN)
    _edit(book, {c.name: 0 for c in spec.INPUT_CELLS})
    batch = read.read_batch([book], YEAR, ws)
    from pipeline import validate

    codes = {f.code for f in validate.validate(batch, ws).findings}
    assert "REPORT_UNFILLED" not in codes


# ---- a blank yes/no answer ---------------------------------------------------------------------------------


def _section_six(path: Path) -> list[str]:
    paras = [p.text for p in Document(path).paragraphs]
    start = next(i for i, t in enumerate(paras) if t.startswith("六、"))
    end = next((i for i, t in enumerate(paras) if i > start and t.startswith("七、")), len(paras))
    return paras[start + 1:end]


def test_blank_fee_answer_is_never_turned_into_a_statement(tmp_path):
    root, ws = _copy(tmp_path)
    town = ws.agency(TOWN)
    _edit(_book(root, ws, TOWN), {"FEE_fee_charged": None, "TXT_fee_note": None})
    ws, result, out, findings = _run(root, tmp_path)
    assert [(f["code"], f["agency"], f["cells"]) for f in findings] == [
        ("FIELD_INVALID", TOWN, [spec.FIELD["FEE_fee_charged"].ref])]
    six = _section_six(_report_path(out, town.name))
    assert six and not any("信息处理费" in p for p in six), six
    # a neighbour that answered 否 still says so (its own note)
    assert any("未收取信息处理费" in p for p in _section_six(_report_path(out, ws.agency(NEIGHBOUR).name)))
    county = "\n".join(p.text for p in _county_docx(out).paragraphs)
    assert "各单位均未收取信息处理费" not in county
    assert f"{town.name}未报告是否收取信息处理费" in county


def test_fee_answer_no_without_note_says_not_charged():
    from test_render_data import make_agency

    a = make_agency(workspace.load(SAMPLE).agency(TOWN), YEAR, 0)
    assert render.fee_paragraphs(a) == ("本年度未收取信息处理费。",)
    blank = replace(a, fields={**a.fields, "FEE_fee_charged": ""})
    assert render.fee_paragraphs(blank) == ()
    noted = replace(a, fields={**a.fields, "FEE_fee_charged": "", "TXT_fee_note": "另行说明。"})
    assert render.fee_paragraphs(noted) == ("另行说明。",)


def test_verdicts_of_the_conflict_in_the_validation_report(tmp_path):
    root, ws = _copy(tmp_path)
    _edit(_book(root, ws, TOWN), {"INFO_agency_code": NEIGHBOUR})
    batch = read.read_batch(ws.files(YEAR), YEAR, ws)
    from pipeline import validate

    report = validate.validate(batch, ws)
    assert report.verdict(NEIGHBOUR) == VERDICT_PASS and report.verdict(TOWN) == VERDICT_MISSING
    (extra,) = [a for a in report.agencies if a.agency_code not in {x.code for x in ws.agencies}]
    assert extra.verdict == VERDICT_FAIL and extra.agency_code not in report.passed
