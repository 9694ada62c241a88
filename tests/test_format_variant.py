"""The format is a value: a second format sits beside 2021 in one process, and every stage works for it.

The variant is test-only: the 2021 definition with one more applicant column in table 三 (基金会, under
法人或其他组织). Nothing outside its definition below changes: template → read → validate → aggregate →
render all follow it, and 2021 is untouched in the same process.
"""

from __future__ import annotations

from pathlib import Path
import sys

import pytest
from docx import Document
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from variant_format import with_foundation_column

from pipeline import aggregate, ooxml, read, render, spec, template, validate, workspace
from pipeline.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024


VARIANT = spec.register(with_foundation_column(spec.DEFINITION_2021, "2021-test-foundation"))
BASE = spec.load("2021")


def test_both_formats_sit_side_by_side():
    assert spec.load("2021") is BASE and spec.load(VARIANT.FORMAT_VERSION) is VARIANT
    rows = len([leaf for top in BASE.definition.t3_rows for leaf in top.leaves()])
    assert len(VARIANT.CELLS) == len(BASE.CELLS) + rows
    assert len([r for r in VARIANT.RULES if r.id == "R1"]) == len([r for r in BASE.RULES if r.id == "R1"]) + 1
    total = VARIANT.CELL[VARIANT.cell_name("三", "new", "total")]
    assert VARIANT.cell_name("三", "new", "foundation") in total.addends
    assert total.formula() != BASE.CELL[BASE.cell_name("三", "new", "total")].formula()
    # 2021 is the current format outside a stage, whatever else was registered
    assert spec.current() is BASE and len(spec.CELLS) == len(BASE.CELLS)
    with spec.using(VARIANT):
        assert spec.CELLS is VARIANT.CELLS and spec.FORMAT_VERSION == VARIANT.FORMAT_VERSION
    assert spec.CELLS is BASE.CELLS


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """One agency of the sample county, its 2024 figures and texts written into the variant's workbook, with
    the new column filled (3 new requests of foundations, all 予以公开)."""
    ws0 = workspace.load(SAMPLE)
    first = ws0.files(YEAR)[0]
    a = read.read_batch([first], YEAR, ws0).agency_data()[0]
    roster = ws0.agency(a.code)
    root = tmp_path_factory.mktemp("variant")
    (root / str(YEAR)).mkdir()
    (root / "county.toml").write_bytes((SAMPLE / "county.toml").read_bytes())
    roster_lines = (SAMPLE / "agencies.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "agencies.csv").write_text(  # the roster of this one agency: the others are not asked for
        roster_lines[0] + "".join(line for line in roster_lines[1:] if line.startswith(a.code + ",")),
        encoding="utf-8")
    ws = workspace.load(root)
    with spec.using(VARIANT):
        wb = template.build_workbook(YEAR, roster)
        inputs = {c.name: a.values[c.name] for c in spec.INPUT_CELLS if c.name in a.values
                  and not (c.table == "三" and c.row_key == "carried_in")}
        inputs[spec.cell_name("三", "new", "foundation")] = 3
        inputs[spec.cell_name("三", "granted", "foundation")] = 3
        inputs[spec.cell_name("三", "carried_in", "foundation")] = 0
        for c in spec.INPUT_CELLS:
            if c.table == "三" and c.row_key == "carried_in" and c.name not in inputs:
                inputs[c.name] = a.values[c.name]
        fields = {f.name: a.fields[f.name] for f in spec.FIELDS
                  if not f.prefilled and a.fields.get(f.name) not in (None, "")}
        template.fill(wb, {**inputs, **fields})
        path = ooxml.save_workbook(wb, root / str(YEAR) / first.name)
    return ws, a, path


def test_the_variant_workbook_has_the_new_column(county):
    _, _, path = county
    wb = load_workbook(path)
    cell = VARIANT.CELL[VARIANT.cell_name("三", "new", "foundation")]
    assert wb[cell.sheet][cell.ref].value == 3
    labels = {wb[lab.sheet][lab.ref].value for lab in VARIANT.LABELS if lab.sheet == cell.sheet}
    assert "基金会" in labels
    assert VARIANT.cell_name("三", "new", "foundation") in wb.defined_names


def _read(ws: Workspace, fmt: spec.Format):
    return read.read_batches([(ws.files(YEAR), YEAR)], ws, jobs=1, fmt=fmt)[0]


def test_read_validate_aggregate_render_follow_the_variant(county, tmp_path):
    ws, a, _ = county
    figures = _read(ws, VARIANT)
    assert figures.format is VARIANT
    got = figures.agency_data()[0]
    new_total = VARIANT.cell_name("三", "new", "total")
    assert got.values[VARIANT.cell_name("三", "new", "foundation")] == 3
    assert got.values[new_total] == a.values[new_total] + 3  # the total sums the new column too

    report = validate.validate(figures, ws, None, jobs=1)
    assert report.format is VARIANT
    assert [f for f in report.findings if f.severity == "error"] == [] and report.passed == [a.code]

    rollup = aggregate.aggregate(figures, report, None, ws)
    assert rollup.format is VARIANT and rollup.totals[new_total] == a.values[new_total] + 3

    done = render.render(rollup, ws.county, tmp_path, jobs=1)
    doc = Document(done.agency_reports[0])
    t3 = next(t for t in doc.tables if any("基金会" in c.text for c in t.rows[2].cells))
    header = [c.text for c in t3.rows[2].cells]
    first_row = [c.text for c in t3.rows[3].cells]
    assert first_row[header.index("基金会")] == "3"
    assert str(a.values[new_total] + 3) in first_row


def test_a_wrong_figure_in_the_new_column_breaks_its_rule(county, tmp_path):
    ws, a, path = county
    wb = load_workbook(path)
    with spec.using(VARIANT):
        cell = spec.CELL[spec.cell_name("三", "granted", "foundation")]
    wb[cell.sheet][cell.ref].value = 2
    wb.save(path)
    try:
        report = validate.validate(_read(ws, VARIANT), ws, None, jobs=1)
    finally:
        wb[cell.sheet][cell.ref].value = 3
        wb.save(path)
    r1 = [f for f in report.findings if f.code == "R1"]
    # R1 breaks in the new column (and so in 总计, which sums it: said once, by the column's finding)
    assert len(r1) == 1 and r1[0].severity == "error" and r1[0].sheet == cell.sheet
    column = cell.ref.rstrip("0123456789")
    assert cell.ref in r1[0].cells and all(ref.rstrip("0123456789") == column for ref in r1[0].cells)


def test_2021_still_reads_the_sample_after_the_variant():
    ws = workspace.load(SAMPLE)
    figures = _read(ws, BASE)
    assert figures.format is BASE
    assert validate.validate(figures, ws, None, jobs=1).errors == 0
    assert "T3_new_foundation" not in figures.agency_data()[0].values
