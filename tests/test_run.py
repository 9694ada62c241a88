"""End to end, as the county office runs it: the CLI on (a copy of) the bundled sample county."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook
from typer.testing import CliRunner

from pipeline import export, read, spec, workspace
from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
runner = CliRunner()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """`nianbao reports` over a copy of the sample county (the copy's bytes are checked afterwards)."""
    tmp = tmp_path_factory.mktemp("run")
    ws = tmp / "county"
    shutil.copytree(SAMPLE, ws)
    before = {p.relative_to(ws).as_posix(): _sha(p) for p in ws.rglob("*") if p.is_file()}
    out = tmp / "out"
    result = runner.invoke(app, ["reports", str(ws), "--year", str(YEAR), "--output", str(out), "--jobs", "1"])
    return ws, out / str(YEAR), result, before


def test_reports_on_the_sample_county_exit_0_and_write_everything(sample_run):
    ws_root, out, result, _ = sample_run
    assert result.exit_code == 0, result.output
    ws = workspace.load(ws_root)
    for a in ws.agencies:
        assert (out / f"{a.name}{YEAR}年政府信息公开工作年度报告.docx").is_file(), a.name
    county = [p for p in out.glob("*.docx") if "全县汇总" in p.name]
    assert len(county) == 1
    assert (out / "全县汇总.xlsx").is_file()
    assert json.loads((out / export.RESULT_JSON).read_text(encoding="utf-8")) == []
    assert (out / export.RESULT_XLSX).is_file()
    assert not (out / export.RETURN_DIR).exists() or not any((out / export.RETURN_DIR).iterdir())
    assert "通过 12" in result.output


def test_the_manifest_accounts_for_every_input_and_output(sample_run):
    ws_root, out, _, _ = sample_run
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    year_dir = ws_root / str(YEAR)
    files = sorted(p.name for p in year_dir.iterdir() if p.is_file())
    assert [i["file"] for i in m["inputs"]] == files
    for i in m["inputs"]:
        assert i["status"] == "read" and i["verdict"] == "通过"
        assert i["sha256"] == _sha(year_dir / i["file"])
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert [o["file"] for o in m["outputs"]] == written
    for o in m["outputs"]:
        assert o["sha256"] == _sha(out / o["file"])
    last_year = ws_root / str(YEAR - 1)
    assert [i["file"] for i in m["previous_year_inputs"]] == sorted(p.name for p in last_year.iterdir())
    for i in m["previous_year_inputs"]:
        assert i["status"] == "read" and i["sha256"] == _sha(last_year / i["file"])
    assert m["workspace"] == [{"file": n, "sha256": _sha(ws_root / n)} for n in ("county.toml", "agencies.csv")]


def test_validate_after_reports_leaves_the_reports(tmp_path):
    """A validation-only run rewrites the validation outputs and keeps what the last full run wrote (listed in
    its manifest, so the next full run still cleans up after it)."""
    out = tmp_path / "out"
    args = [str(SAMPLE), "--year", str(YEAR), "--output", str(out), "--jobs", "1"]
    assert runner.invoke(app, ["reports", *args]).exit_code == 0
    year_dir = out / str(YEAR)
    before = {p.relative_to(year_dir).as_posix(): _sha(p) for p in year_dir.rglob("*") if p.name != "manifest.json"}
    assert sum(n.endswith(".docx") for n in before) == 13
    assert runner.invoke(app, ["validate", *args]).exit_code == 0
    after = {p.relative_to(year_dir).as_posix(): _sha(p) for p in year_dir.rglob("*") if p.name != "manifest.json"}
    assert after == before
    m = json.loads((year_dir / "manifest.json").read_text(encoding="utf-8"))
    assert {o["file"]: o["sha256"] for o in m["outputs"]} == after


def test_inputs_are_never_modified(sample_run):
    ws_root, _, _, before = sample_run
    after = {p.relative_to(ws_root).as_posix(): _sha(p) for p in ws_root.rglob("*") if p.is_file()}
    assert after == before


def test_an_agency_report_carries_the_workbook_figures(sample_run):
    """Table 三's 新收 total in the Word report equals the workbook's cell (read independently with openpyxl)."""
    ws_root, out, _, _ = sample_run
    ws = workspace.load(ws_root)
    agency = ws.agencies[1]
    book = next(p for p in (ws_root / str(YEAR)).iterdir() if agency.name in p.name)
    wb = load_workbook(book, data_only=False)
    name = spec.cell_name("三", "new", "natural")
    (sheet, ref), = [(d.attr_text.split("!")[0].strip("'"), d.attr_text.split("!")[1].replace("$", ""))
                     for d in [wb.defined_names[name]]]
    expected = str(int(wb[sheet][ref].value))
    doc = Document(out / f"{agency.name}{YEAR}年政府信息公开工作年度报告.docx")
    cells = [c.text.strip() for t in doc.tables for r in t.rows for c in r.cells]
    assert expected in cells
    assert any(agency.name in p.text for p in doc.paragraphs)


def test_a_broken_and_a_missing_agency_exit_1_and_the_others_still_get_reports(tmp_path):
    ws_root = tmp_path / "county"
    shutil.copytree(SAMPLE, ws_root)
    ws = workspace.load(ws_root)
    year_dir = ws_root / str(YEAR)
    broken, gone = ws.agencies[2], ws.agencies[3]
    next(p for p in year_dir.iterdir() if gone.name in p.name).unlink()
    book = next(p for p in year_dir.iterdir() if broken.name in p.name)
    wb = load_workbook(book)
    name = spec.cell_name("三", "granted", "natural")
    dn = wb.defined_names[name]
    sheet, ref = dn.attr_text.split("!")
    cell = wb[sheet.strip("'")][ref.replace("$", "")]
    cell.value = int(cell.value) + 5  # 予以公开 too high: 一+二 ≠ （七）+四
    wb.save(book)

    out = tmp_path / "out"
    result = runner.invoke(app, ["reports", str(ws_root), "--year", str(YEAR), "--output", str(out), "-j", "1"])
    assert result.exit_code == 1, result.output
    out = out / str(YEAR)
    assert not (out / f"{broken.name}{YEAR}年政府信息公开工作年度报告.docx").exists()
    assert not (out / f"{gone.name}{YEAR}年政府信息公开工作年度报告.docx").exists()
    others = [a for a in ws.agencies if a not in (broken, gone)]
    for a in others:
        assert (out / f"{a.name}{YEAR}年政府信息公开工作年度报告.docx").is_file()
    findings = json.loads((out / export.RESULT_JSON).read_text(encoding="utf-8"))
    mine = [f for f in findings if f["agency"] == broken.code and f["severity"] == "error"]
    # the cell typed wrong is named (an input behind （七）总计), the locked total itself is not
    edited, total = (spec.CELL[spec.cell_name("三", r, "natural")].ref for r in ("granted", "total"))
    assert any(f["code"] == "R1" and edited in f["cells"] and total not in f["cells"] for f in mine), mine
    returned = list((out / export.RETURN_DIR).iterdir())
    assert any(broken.name in p.name for p in returned)
    county = next(p for p in out.glob("*.docx") if "全县汇总" in p.name)
    text = "\n".join(p.text for p in Document(county).paragraphs)
    assert "草稿" in text and gone.name in text and broken.name in text


def test_template_prefills_next_years_carry_over_from_this_years_workbooks(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["template", str(SAMPLE), "--year", "2025", "--output", str(out)])
    assert result.exit_code == 0, result.output
    ws = workspace.load(SAMPLE)
    folder = out / "2025" / "预填报表"
    files = sorted(folder.glob("*.xlsx"))
    assert len(files) == len(ws.agencies)
    this_year = {a.code: a for a in read.read_batch(ws.files(YEAR), YEAR, ws).agency_data()}
    checked = 0
    for f in files:
        wb = load_workbook(f)
        code = next(a.code for a in ws.agencies if a.name in f.name)
        for leaf in (c for c in spec.CELLS if c.table == "三" and c.row_key == "carried_in" and not c.computed):
            dn = wb.defined_names[leaf.name]
            sheet, ref = dn.attr_text.split("!")
            got = wb[sheet.strip("'")][ref.replace("$", "")].value
            assert got == this_year[code].values[spec.cell_name("三", "carried_over", leaf.column_key)], (f, leaf)
            checked += 1
    assert checked == len(files) * 6


def test_the_check_stage_gives_the_same_result_in_its_own_process(tmp_path):
    """With several cores the check stage runs in a forked process: the same verdicts, findings, figures and
    outputs as in this process; a programming error there reaches the caller with the child's traceback."""
    from pipeline import run

    ws = workspace.load(SAMPLE)
    inline = run._check(ws, YEAR, tmp_path / "a", 1, None, True)
    forked = run._check_stage(ws, YEAR, tmp_path / "b", jobs=2, console=None, render=True)
    assert [v.as_json() for v in forked.verdicts] == [v.as_json() for v in inline.verdicts]
    assert forked.report.findings == inline.report.findings and forked.report.passed == inline.report.passed
    assert forked.rollup == inline.rollup and forked.rollup.reports
    assert [p.name for p in forked.outputs] == [p.name for p in inline.outputs]
    assert set(forked.seconds) == {"read", "validate", "export", "aggregate"}


def test_an_error_in_the_check_stage_process_reaches_the_caller(tmp_path, monkeypatch):
    from pipeline import run, validate

    def broken(*args, **kwargs):
        raise ValueError("校验出错")

    monkeypatch.setattr(validate, "validate", broken)
    with pytest.raises(ValueError, match="校验出错") as info:
        run.run(workspace.load(SAMPLE), YEAR, tmp_path, render=True, jobs=2)
    assert any("broken" in note for note in getattr(info.value, "__notes__", []))
    assert json.loads((tmp_path / str(YEAR) / "manifest.json").read_text(encoding="utf-8"))["complete"] is False
