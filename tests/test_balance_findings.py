"""Balance-rule findings (R1–R5, R6/R8) and an agency without last year's workbook, on the sample county.

A rule's finding states both sides and their gap, names the input cells behind each total (the returned workbook
marks those, never a locked formula), and says 应为/实为 only where one side is known to be right (R8: last
year's report). An agency missing from last year's folder gets PREVIOUS_MISSING, no R8, and stays out of the
county's year-on-year comparison, which says over how many agencies it runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from pipeline import aggregate, export, read, render, spec, validate, workspace
from pipeline import findings as F

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
C = spec.cell_name
NEW_NAT = C("三", "new", "natural")


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "county"
    shutil.copytree(SAMPLE, root)
    return root


def _book(root: Path, year: int, agency) -> Path:
    return next(p for p in (root / str(year)).iterdir() if agency.name in p.name)


def _add(book: Path, name: str, delta: int) -> None:
    wb = load_workbook(book)
    sheet, ref = wb.defined_names[name].attr_text.split("!")
    cell = wb[sheet.strip("'")][ref.replace("$", "")]
    cell.value = int(cell.value) + delta
    wb.save(book)


def _check(root: Path):
    ws = workspace.load(root)
    batch = read.read_batch(ws.files(YEAR), YEAR, ws)
    files = ws.files(YEAR - 1)
    previous = read.read_batch(files, YEAR - 1, ws) if files else None
    return ws, batch, previous, validate.validate(batch, ws, previous)


def _refs(names) -> set[str]:
    return {spec.CELL[n].ref for n in names}


def test_the_sample_county_has_no_rule_finding():
    *_, report = _check(SAMPLE)
    assert not [f for f in report.findings if f.code in {"R1", "R2", "R3", "R5", "R6", "R8", "PREVIOUS_MISSING"}]


@pytest.fixture(scope="module")
def one_new_natural_plus_3(tmp_path_factory):
    """三 新收·自然人 typed 3 too high in one agency's workbook."""
    root = _copy(tmp_path_factory.mktemp("r1"))
    agency = workspace.load(root).agencies[1]
    _add(_book(root, YEAR, agency), NEW_NAT, 3)
    ws, batch, previous, report = _check(root)
    return root, agency, batch, report


def test_r1_states_both_sides_and_the_gap(one_new_natural_plus_3):
    root, agency, batch, report = one_new_natural_plus_3
    data = next(a for a in batch.agency_data() if a.code == agency.code)
    r1 = [f for f in report.findings if f.code == "R1" and f.agency_code == agency.code]
    rule = spec.RULE["R1.natural"]
    (natural,) = [f for f in r1 if set(f.cells) == _refs(rule.inputs)]
    lhs = sum(data.values[n] for n in rule.lhs)
    rhs = sum(data.values[n] for n in rule.rhs)
    assert lhs - rhs == 3
    assert "左边" in natural.message and f"= {lhs}，" in natural.message
    assert "右边" in natural.message and f"= {rhs}，" in natural.message
    assert "相差 3" in natural.message
    # either side may hold the wrong cell (here 新收 was typed wrong, not a result): no 应为/实为
    assert (natural.expected, natural.actual) == ("", "")
    # the input cells behind both sides, 新收 among them; no locked total
    assert spec.CELL[NEW_NAT].ref in natural.cells
    locked = {c.ref for c in spec.CELLS if c.computed and c.sheet == natural.sheet}
    for f in r1:
        assert not set(f.cells) & locked, f.cells
    # the 总计 column breaks too, but only as the sum of the columns: said once, by the column's finding
    # (R1.total would name every input of table 三)
    assert len(r1) == 1
    assert {f.code for f in report.findings if f.agency_code == agency.code and f.severity == "error"} == {"R1"}


def test_the_returned_workbook_marks_the_terms_the_agency_types_and_nothing_locked(one_new_natural_plus_3, tmp_path):
    """One typing error (新收·自然人 3 too high): R1 of that column names every input behind both sides (校验结果),
    but the returned copy fills only the rule's own typed terms — 新收 and 结转下年度 of that column — never the
    pre-filled, locked 上年结转 or a total (the template's formulas), and the note sits on those two cells."""
    root, agency, batch, report = one_new_natural_plus_3
    (path,) = export.write_returns(report, batch, tmp_path)
    wb = load_workbook(path)
    (r1,) = [f for f in report.findings if f.agency_code == agency.code and f.severity == "error"]
    assert len(r1.cells) > 20  # every input of the column, in the findings list
    red = export.FILL["error"].start_color.rgb
    filled = {(ws.title, c.coordinate) for ws in wb.worksheets if ws.title != export.RETURN_SHEET
              for row in ws.iter_rows() for c in row if c.fill is not None and c.fill.start_color.rgb == red}
    sheet = spec.CELL[NEW_NAT].sheet
    assert filled == {(sheet, spec.CELL[NEW_NAT].ref), (sheet, spec.CELL[C("三", "carried_over", "natural")].ref)}
    carried_in = wb[sheet][spec.CELL[C("三", "carried_in", "natural")].ref]
    # pre-filled from last year and locked: not marked, its note the template's own
    assert carried_in.protection.locked and F.REGISTRY["R1"].title not in (carried_in.comment.text or "")
    assert not filled & {(c.sheet, c.ref) for c in spec.CELLS if c.computed}
    for _, ref in filled:
        assert F.REGISTRY["R1"].title in wb[sheet][ref].comment.text


def test_r8_expected_is_last_years_figure(tmp_path):
    root = _copy(tmp_path)
    agency = workspace.load(root).agencies[2]
    name = C("三", "carried_over", "natural")
    _add(_book(root, YEAR - 1, agency), name, 2)  # last year's 结转下年度 two higher than this year's 上年结转
    ws, batch, previous, report = _check(root)
    last = next(a for a in previous.agency_data() if a.code == agency.code).values
    this = next(a for a in batch.agency_data() if a.code == agency.code).values
    r8 = [f for f in report.findings if f.code == "R8" and f.agency_code == agency.code]
    carried_in = C("三", "carried_in", "natural")
    (natural,) = [f for f in r8 if f.cells == (spec.CELL[carried_in].ref,)]
    assert (natural.expected, natural.actual) == (str(last[name]), str(this[carried_in]))
    assert "相差 2" in natural.message


# ---- an agency without last year's workbook ---------------------------------------------------------------


@pytest.fixture(scope="module")
def one_missing_last_year(tmp_path_factory):
    root = _copy(tmp_path_factory.mktemp("prev"))
    ws = workspace.load(root)
    gone = ws.agencies[3]
    _book(root, YEAR - 1, gone).unlink()
    # its carry-over would break R8 if last year's workbook were there
    _add(_book(root, YEAR, gone), C("三", "carried_in", "natural"), 1)
    _add(_book(root, YEAR, gone), C("三", "new", "natural"), -1)
    ws, batch, previous, report = _check(root)
    return root, ws, gone, batch, previous, report


def test_one_previous_missing_for_that_agency_and_no_r8(one_missing_last_year):
    _, ws, gone, batch, previous, report = one_missing_last_year
    pm = [f for f in report.findings if f.code == "PREVIOUS_MISSING"]
    assert [f.agency_code for f in pm] == [gone.code]
    (f,) = pm
    assert f.severity == "warning" and f.message.startswith("未能核对上年结转：未找到该单位上年")
    assert f"{YEAR - 1}年度" in f.message
    assert set(f.cells) == {spec.CELL[c.name].ref for c in spec.INPUT_CELLS
                            if c.table == "三" and c.row_key == "carried_in"}
    assert not [f for f in report.findings if f.code in ("R8", "R6", "YOY_JUMP") and f.agency_code == gone.code]
    assert not [f for f in report.findings if f.severity == "error"]
    assert gone.code in report.passed


def test_no_previous_missing_without_any_previous_year(tmp_path):
    root = _copy(tmp_path)
    shutil.rmtree(root / str(YEAR - 1))
    *_, report = _check(root)
    assert not [f for f in report.findings if f.code == "PREVIOUS_MISSING"]


def test_county_year_on_year_only_over_agencies_in_both_years(one_missing_last_year, tmp_path):
    _, ws, gone, batch, previous, report = one_missing_last_year
    r = aggregate.aggregate(batch, report, previous, ws)
    both = [a for a in batch.agency_data() if a.code != gone.code]
    assert set(r.yoy_agencies) == {a.code for a in both} and len(r.yoy_agencies) == len(ws.agencies) - 1
    assert r.yoy_without == (gone.name,)
    row = next(y for y in r.yoy if y.key == "new")
    now = sum(a.values[C("三", "new", "total")] for a in both)
    last = sum(a.values[C("三", "new", "total")] for a in previous.agency_data())
    assert (row.current, row.previous) == (now, last)
    assert r.key["new"] == now + next(a for a in batch.agency_data() if a.code == gone.code).values[
        C("三", "new", "total")]  # the county total itself still has every agency

    ctx = render.county_context(r, ws.county)
    n = len(ws.agencies) - 1
    assert ctx.yoy_scope.startswith(f"同比口径：两年均有报表的{n}个单位") and gone.name in ctx.yoy_scope
    path = render.render_county(r, ws.county, tmp_path)
    text = "\n".join(p.text for p in Document(path).paragraphs)
    assert f"同比口径：两年均有报表的{n}个单位" in text
    assert f"按两年均有报表的{n}个单位计，" in text


def test_county_year_on_year_scope_with_every_agency(tmp_path):
    ws, batch, previous, report = _check(SAMPLE)
    r = aggregate.aggregate(batch, report, previous, ws)
    assert len(r.yoy_agencies) == len(ws.agencies) and r.yoy_without == ()
    assert r.yoy_scope() == f"同比口径：两年均有报表的{len(ws.agencies)}个单位。"
