"""Each stage alone on the sample county, from its typed input to its typed output (README, Architecture):

    read(files) → Figures; validate(Figures, last year) → Report; export(Report, Figures) → validation outputs;
    aggregate(Figures, Report, last year) → Rollup; render(Rollup) → .docx; county_workbook(Rollup) → .xlsx

Every test builds its stage's input from the previous stage's output and checks the output by its content (a
figure with the sheet and cell it came from, a finding's cell, a number in the rendered document).
"""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from pipeline import aggregate, county_xlsx, export, read, render, spec, validate, workspace
from pipeline.model import AgencyData, Report, Rollup

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
NEW_TOTAL = spec.cell_name("三", "new", "total")


@pytest.fixture(scope="module")
def ws():
    return workspace.load(SAMPLE)


@pytest.fixture(scope="module")
def figures(ws):
    this, last = read.read_batches([(ws.files(YEAR), YEAR), (ws.files(YEAR - 1), YEAR - 1)], ws, jobs=1)
    return this, last


@pytest.fixture(scope="module")
def report(ws, figures):
    return validate.validate(figures[0], ws, figures[1], jobs=1)


@pytest.fixture(scope="module")
def rollup(ws, figures, report):
    return aggregate.aggregate(figures[0], report, figures[1], ws)


def test_read_gives_figures_with_provenance(ws, figures):
    this, last = figures
    assert isinstance(this, read.Figures) and this.year == YEAR and last.year == YEAR - 1
    assert len(this.records) == len(ws.files(YEAR)) == len(ws.agencies)
    row = this.values[(this.values["name"] == NEW_TOTAL)].iloc[0]
    assert (row["sheet"], row["cell"]) == (spec.CELL[NEW_TOTAL].sheet, spec.CELL[NEW_TOTAL].ref)
    agencies = this.agency_data()
    assert all(isinstance(a, AgencyData) for a in agencies)
    assert {a.code for a in agencies} == {a.code for a in ws.agencies}
    # a total is the sum of its addends, recomputed from the inputs
    a = agencies[0]
    assert a.values[NEW_TOTAL] == sum(a.values[n] for n in spec.CELL[NEW_TOTAL].addends)
    assert a.text("TXT_overview")


def test_validate_gives_a_report(ws, figures, report):
    assert isinstance(report, Report) and report.year == YEAR
    assert {v.agency_code for v in report.agencies} == {a.code for a in ws.agencies}
    assert report.errors == 0 and sorted(report.passed) == sorted(a.code for a in ws.agencies)


def test_validate_names_the_cell_of_a_wrong_figure(ws, figures):
    import dataclasses

    this, last = figures
    values = this.values.copy()
    cell = spec.CELL[spec.cell_name("三", "new", "natural")]
    target = values.index[(values["name"] == cell.name) & (values["record"] == 0)][0]
    values.loc[target, "value"] = values.loc[target, "value"] + 1
    values.loc[target, "number"] = values.loc[target, "number"] + 1
    broken = dataclasses.replace(this, values=values)
    rep = validate.validate(broken, ws, last, jobs=1)
    r1 = [f for f in rep.findings if f.code == "R1" and f.severity == "error"]
    assert r1 and r1[0].sheet == cell.sheet and cell.ref in r1[0].cells, [(f.code, f.cells) for f in rep.findings]
    assert this.records[0].agency_code not in rep.passed


def test_export_writes_the_validation_outputs(tmp_path, figures, report):
    paths = export.write_validation_outputs(report, figures[0], tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert {export.RESULT_XLSX, export.RESULT_JSON} <= names
    assert load_workbook(tmp_path / export.RESULT_XLSX, read_only=True).sheetnames


def test_aggregate_gives_the_rollup(ws, figures, rollup):
    assert isinstance(rollup, Rollup) and rollup.year == YEAR and rollup.county == ws.county.name
    agencies = figures[0].agency_data()
    assert rollup.totals[NEW_TOTAL] == sum(a.values[NEW_TOTAL] for a in agencies)
    fees = spec.cell_name("二", "fees", "amount")
    assert rollup.totals[fees] == sum((Decimal(a.values[fees]) for a in agencies), Decimal(0))
    assert [a.code for a, _ in rollup.reports] == [a.code for a in agencies]
    assert rollup.has_previous and rollup.completeness.complete


def test_render_takes_the_rollup(tmp_path, ws, rollup):
    done = render.render(rollup, ws.county, tmp_path, jobs=1)
    assert len(done.agency_reports) == len(rollup.reports) and done.county_report.is_file()
    a, _ = rollup.reports[0]
    text = "\n".join(p.text for p in Document(done.agency_reports[0]).paragraphs)
    tables = ["".join(c.text for c in row.cells) for t in Document(done.agency_reports[0]).tables for row in t.rows]
    assert a.name in text or a.text("INFO_agency_name") in text
    assert any(str(a.values[NEW_TOTAL]) in row for row in tables)


def test_county_workbook_takes_the_rollup(tmp_path, rollup):
    path = county_xlsx.write(rollup, tmp_path)
    wb = load_workbook(path, read_only=True)
    cells = [v for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row]
    assert rollup.totals[NEW_TOTAL] in cells


def test_the_renderer_imports_no_other_stage():
    """render.py fills documents from a Rollup: it never imports the aggregation, the county workbook writer,
    the PDF step, the reader or the validator."""
    tree = ast.parse((ROOT / "pipeline" / "render.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name.removeprefix("pipeline.") for a in node.names}
    assert not imported & {"aggregate", "county_xlsx", "pdf", "read", "validate", "export", "run"}, imported


def test_run_is_the_only_orchestrator():
    """Only run.py calls more than one stage: no stage module calls another stage's entry point."""
    entry = {"read_batches", "read_batch", "validate", "write_validation_outputs", "aggregate", "rollup", "render",
             "write"}
    stage_modules = {"read", "validate", "export", "aggregate", "render", "county_xlsx", "pdf"}
    for name in stage_modules:
        tree = ast.parse((ROOT / "pipeline" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in stage_modules - {name} \
                    and node.func.attr in entry:
                pytest.fail(f"pipeline/{name}.py calls {node.func.value.id}.{node.func.attr}: only run.py orchestrates")
