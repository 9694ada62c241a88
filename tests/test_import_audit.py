"""nianbao audit: published reports imported, then validated as a county run validates its agencies' workbooks.

The sample county's reports of two years audit clean (the years of each agency compared); errors planted in a
published page are found, in their cells, with the cross-year checks; the real pages of tests/fixtures/published
audit without a 错误 on their tables, and the seed's garbled table 四 is reported.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import run, spec, workspace
from pipeline.cli import app
from pipeline.importer import audit, document, recognise
from tests import bench

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
FIXTURES = ROOT / "tests" / "fixtures" / "published"
runner = CliRunner()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[int, list[Path]]:
    """The sample county's agency reports of 2023 and 2024 (rendered)."""
    out = tmp_path_factory.mktemp("rendered")
    ws = workspace.load(SAMPLE)
    found = {}
    for year in (2023, 2024):
        assert run.run(ws, year, out, render=True, jobs=2).exit_code == 0
        found[year] = sorted(p for p in (out / str(year)).glob("*.docx") if "全县汇总" not in p.name)
        assert len(found[year]) == len(ws.agencies)
    return found


def _findings(result: audit.AuditRun, source: audit.AuditSource):
    return [f for f in result.reports[source.year].findings if f.agency_code == source.agency_code]


def test_the_sample_county_audits_clean_across_two_years(reports, tmp_path):
    result = audit.audit(reports[2023] + reports[2024], tmp_path / "out", jobs=2)
    assert result.exit_code == 0
    assert [s.status for s in result.sources] == ["passed"] * 24
    assert sorted(result.reports) == [2023, 2024]
    assert not [f for r in result.reports.values() for f in r.findings]
    # one audit code per agency across both years: the years of an agency are compared
    by_name = {}
    for s in result.sources:
        by_name.setdefault(s.agency, set()).add(s.agency_code)
    assert len(by_name) == 12 and all(len(codes) == 1 for codes in by_name.values())
    data = json.loads((tmp_path / "out" / audit.RESULT_FILE).read_text(encoding="utf-8"))
    assert [s["verdict"] for s in data["sources"]] == ["通过"] * 24
    for y in (2023, 2024):
        assert (tmp_path / "out" / str(y) / "校验结果.xlsx").is_file()
        assert json.loads((tmp_path / "out" / str(y) / "校验结果.json").read_text(encoding="utf-8")) == []


def _cell_at(rec: recognise.Recognised, name: str) -> tuple[int, int, int]:
    m = re.match(r"表格(\d+)第(\d+)行第(\d+)列", rec.cells[name].where)
    assert m, rec.cells[name].where
    return int(m[1]), int(m[2]) - 1, int(m[3]) - 1


def _page_with(docx: Path, changes: dict[str, int], out: Path) -> Path:
    """The report as a CMS page (tests/bench.cms_page), the table cells of ``changes`` (by defined name) printed
    with that much added."""
    doc = document.extract(docx)
    rec = recognise.recognise(doc)
    blocks = list(doc.blocks)
    for name, delta in changes.items():
        index, row, col = _cell_at(rec, name)
        k = next(i for i, b in enumerate(blocks) if isinstance(b, document.Table) and b.index == index)
        cells = [dataclasses.replace(c, text=str(int(c.text) + delta)) if (c.row, c.col) == (row, col) else c
                 for c in blocks[k].cells]
        assert cells != list(blocks[k].cells)
        blocks[k] = dataclasses.replace(blocks[k], cells=tuple(cells))
    out.write_bytes(bench.cms_page(dataclasses.replace(doc, blocks=tuple(blocks)), 1))
    return out


def test_planted_errors_are_found_in_their_cells_and_across_years(reports, tmp_path):
    new_natural = spec.cell_name("三", "new", "natural")
    in_force = spec.cell_name("二", "normative_documents", "in_force")
    edu = next(p for p in reports[2024] if "教育局" in p.name)
    fin = next(p for p in reports[2024] if "财政局" in p.name)
    pages = [_page_with(edu, {new_natural: 1}, tmp_path / "教育局年报.html"),
             _page_with(fin, {in_force: 5}, tmp_path / "财政局年报.html")]
    others = [p for p in reports[2024] if p not in (edu, fin)]
    result = audit.audit(reports[2023] + others + pages, tmp_path / "out", jobs=2)
    assert result.exit_code == 1
    by_file = {Path(s.file).name: s for s in result.sources}
    bad, warned = by_file["教育局年报.html"], by_file["财政局年报.html"]
    assert bad.status == "errors" and bad.verdict.startswith("有错误")
    found = {(f.code, f.sheet) for f in _findings(result, bad) if f.severity == "error"}
    assert {("R1", spec.T3_SHEET), ("R2", spec.T3_SHEET)} <= found
    assert any(spec.CELL[new_natural].ref in f.cells for f in _findings(result, bad) if f.code == "R1")
    # 现行有效 printed 5 too many: only last year's report shows it (R6, 提示)
    r6 = [f for f in _findings(result, warned) if f.code == "R6"]
    assert warned.status == "warnings" and r6 and r6[0].sheet == spec.T2_SHEET
    assert {s.status for s in result.sources if s not in (bad, warned)} == {"passed"}


def test_published_pages_audit_without_false_errors_and_the_seeds_table_four_is_reported(tmp_path):
    result = audit.audit([FIXTURES], tmp_path / "out", jobs=2)
    assert result.exit_code == 1
    by_file = {Path(s.file).name: s for s in result.sources}
    assert by_file["README.md"].status == "not_audited" and by_file["README.md"].verdict == "不是年度报告"
    seed = by_file["jixian_2024_seed.md"]
    errors = [f for f in _findings(result, seed) if f.severity == "error"]
    assert seed.status == "errors" and "表四" in seed.gaps and "部分导入" in seed.verdict
    assert {f.code for f in errors} == {"CELL_TEXT"}  # cells that could not be read: never 0, never a sum
    t4 = {c for f in errors if f.sheet == spec.T4_SHEET for c in f.cells}
    assert t4 == {c.ref for c in spec.table_cells("四") if not c.computed}
    old = by_file["pingtan_2019_page.html"]  # a 2019-format report: said so, not audited against the 2021 rules
    assert old.status == "not_audited" and "2019" in old.verdict
    for name, s in by_file.items():
        if name not in ("README.md", "jixian_2024_seed.md", "pingtan_2019_page.html"):
            assert s.errors == 0 and s.status in ("passed", "warnings"), (name, s.verdict, _findings(result, s))
            assert not [f for f in _findings(result, s) if f.sheet == spec.SHEET_INFO]  # the workbook's cover
    # two years of 平潭综合实验区: its 2023 report is checked against its 2022 report (现行有效 does not chain)
    pingtan = by_file["pingtan_2023.txt"]
    assert by_file["pingtan_2022.txt"].agency_code == pingtan.agency_code
    assert [f.code for f in _findings(result, pingtan) if f.code in ("R6", "R8")] == ["R6"]
    # the page without the agency's name is an agency of its own, named after its file
    page = by_file["pingtan_2023_page.html"]
    assert page.agency_code not in (pingtan.agency_code, "") and "单位名称" in page.verdict


def test_cli_exit_codes(reports, tmp_path):
    ok = runner.invoke(app, ["audit", str(reports[2024][0]), str(reports[2023][0]), "-o", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    assert "通过" in ok.output
    found = runner.invoke(app, ["audit", str(FIXTURES / "jixian_2024_seed.md"), "-o", str(tmp_path / "b")])
    assert found.exit_code == 1 and "有错误" in found.output
    missing = runner.invoke(app, ["audit", str(tmp_path / "nope.html"), "-o", str(tmp_path / "c")])
    assert missing.exit_code == 2 and "找不到" in missing.output


def test_a_cms_pages_breadcrumb_and_footer_are_not_the_reports(reports, tmp_path):
    docx = next(p for p in reports[2024] if "财政局" in p.name)
    doc = document.extract(docx)
    page = tmp_path / "page.html"
    page.write_bytes(bench.cms_page(doc, 0))
    from_docx, from_page = recognise.recognise(doc), recognise.recognise(document.extract(page))
    assert from_page.agency == from_docx.agency == "示例县财政局"  # not 首页>政务公开>…示例县财政局
    assert from_page.texts == from_docx.texts  # the page's footer after the signature is left out
    assert any("页脚" in n for n in from_page.notes)
