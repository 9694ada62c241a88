"""Published report pages (tests/fixtures/published/): every ``<name>.expected.json`` found there is checked cell for
cell against what the importer reads from ``<name>.html|.htm|.txt|.md|.docx|.pdf``; and an HTML page with the markup
of real government CMS pages (rowspan/colspan, labels split over <p> and <br>, &nbsp;, blank cells, full-width digits,
a GB2312 charset) built from the spec.

All the fixtures are imported in one run, as a folder of published pages would be: a report that leaves a digit run
open (Pingtan 2023's 行政规范性文件 '77132470') is settled by the same agency's report of the year before
(Pingtan 2022) when the arithmetic of the format allows only one split.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline import spec
from pipeline.importer import document, import_sources, recognise

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "published"
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))
SUFFIXES = (".html", ".htm", ".txt", ".md", ".docx", ".pdf")


def _source(expected: Path) -> Path:
    stem = expected.name.removesuffix(".expected.json")
    found = [FIXTURES / (stem + s) for s in SUFFIXES if (FIXTURES / (stem + s)).exists()]
    assert found, f"no source file beside {expected.name}"
    return found[0]


@pytest.fixture(scope="module")
def imported():
    """Every fixture recognised in one import run (as a folder): file name → Recognised."""
    sources = [_source(e) for e in EXPECTED]
    seen = [import_sources_recognised(p) for p in sources]
    from pipeline.importer import _across_years

    _across_years(seen)
    return {p.name: r for p, r in zip(sources, seen)}


def import_sources_recognised(path: Path) -> recognise.Recognised:
    return recognise.recognise(document.extract(path))


def test_there_are_fixtures():
    assert len(EXPECTED) >= 5


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_a_published_report_imports_cell_exact(expected, imported):
    want = json.loads(expected.read_text(encoding="utf-8"))
    rec = imported[_source(expected).name]
    if want.get("format") == "2019":  # a 2019-format report: recognised as one, on the evidence the page holds
        assert rec.old_format, f"{expected.name}: not recognised as a 2019-format report"
        listed = {spec.normalise_label(x) for x in want["old_format_labels"]}
        found = {spec.normalise_label(x) for x in rec.old_labels}
        assert len(found & listed) >= 3, (found, listed)  # is_old_format's bar: three distinct 2019 labels
        return
    assert not rec.old_format
    wrong = []
    for name, value in want["cells"].items():
        got = rec.cells[name]
        exp = Decimal(value) if spec.CELL[name].kind == "money" else int(value)
        if got.value is None or got.value != exp:
            wrong.append(f"{name}: expected {value}, read {got.value} ({got.note})")
    for name in want.get("unreadable", []):
        if rec.cells[name].value is not None:
            wrong.append(f"{name}: expected unreadable, read {rec.cells[name].value}")
        else:
            assert rec.cells[name].status == recognise.UNREADABLE
    assert not wrong, "\n".join(wrong)
    assert set(want["cells"]) | set(want.get("unreadable", [])) == {c.name for c in spec.CELLS}


def test_the_seed_imports_with_its_texts_and_says_what_it_lacks(imported):
    rec = imported["jixian_2024_seed.md"]
    assert (rec.agency, rec.year) == ("集贤县集贤镇人民政府", 2024)
    assert rec.tables["四"] is None and rec.tables["三"] is not None
    assert rec.gaps() == ["表三42个单元格", "表四"]
    t = rec.texts
    assert t["TXT_overview"].startswith("2024年，集贤镇坚持以习近平新时代")
    assert t["TXT_proactive"].startswith("围绕年度政务公开重点工作安排") and t["TXT_proactive"].endswith("完成情况。")
    assert t["TXT_on_request"] == "2024年，集贤镇人民政府未收到政府信息公开申请。发生涉政府 信息公开的行政复议案 0 件。"
    assert t["TXT_oversight"].endswith("接受群众监督。")
    assert t["TXT_problems"] == "一是创新能力不足，政府信息公开渠道较为单一；二是工作人员业务能力有待加强。"
    assert t["TXT_improvements"].count("\n") == 2 and t["TXT_improvements"].startswith("一是拓宽")
    assert t["TXT_other_matters"] == "无。"
    assert (t["INFO_postcode"], t["INFO_phone"]) == ("155100", "0469-4914003")
    # the table 二 header typo (本年度止件数) and the heading 三、本年处理结果 do not stop the cells being read
    assert rec.cells[spec.cell_name("二", "normative_documents", "repealed")].value == 0


def test_a_digit_run_left_open_is_unreadable_alone_and_settled_by_last_years_report():
    one = recognise.recognise(document.extract(FIXTURES / "pingtan_2023.txt"))
    names = [spec.cell_name("二", "normative_documents", k) for k in ("repealed", "in_force")]
    assert [one.cells[n].value for n in names] == [None, None]
    assert "无法唯一拆分" in one.cells[names[0]].note
    assert one.cells[spec.cell_name("二", "normative_documents", "issued")].value == 77  # the text says 77件
    before = recognise.recognise(document.extract(FIXTURES / "pingtan_2022.txt"))
    assert recognise.refine_with_previous(one, before) == [spec.cell_name("二", "normative_documents", k)
                                                            for k in ("issued", "repealed", "in_force")]
    assert [one.cells[n].value for n in names] == [132, 470]


# ---------------------------------------------------------------------------------------------------- HTML

def _cms_page(values: dict[str, object], blank: str, fullwidth: str) -> str:
    """A 2021-format report page as government CMS pages mark it up, every label from the spec."""
    d = spec.current().definition

    def cell(name: str, span: int = 1) -> str:
        if name == blank:
            return f'<td colspan="{span}">&nbsp;</td>'
        v = str(values[name])
        if name == fullwidth:
            v = v.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        return f'<td colspan="{span}"><p style="text-align:center"><span>{v}</span></p></td>'

    def split(label: str) -> str:  # labels broken over lines as CMS editors leave them
        if len(label) <= 4:
            return "".join(f"<p>{label[i:i + 2]}</p>" for i in range(0, len(label), 2))
        return label[:3] + " <br/>" + label[3:]

    h = ['<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>x</title>'
         "<script>var a = '一、总体情况';</script></head><body><div class='TRS_Editor'>",
         f"<h1>测试县测试局2024{spec.REPORT_TITLE_SUFFIX}</h1>"]
    for s in spec.SECTIONS:
        h.append(f"<p><strong>{s.heading}</strong></p>")
        if s.number == "一":
            h.append("<p>&nbsp;&nbsp;本年度，测试局认真贯彻条例。</p>")
        if s.number == "二":
            h.append('<table border="1"><tbody>')
            for block in d.t2_blocks:
                h.append(f'<tr><td colspan="4">{block.title}</td></tr><tr><td>{spec.T2_HEADER}</td>'
                         + "".join(f'<td colspan="{4 - len(block.columns) if len(block.columns) == 1 else 1}">'
                                   f"{c.label}</td>" for c in block.columns) + "</tr>")
                for r in block.rows:
                    wide = 3 if len(block.columns) == 1 else 1
                    h.append(f"<tr><td>{r.label}</td>" + "".join(cell(spec.cell_name("二", r.key, c.key), wide)
                                                                 for c in block.columns) + "</tr>")
            h.append("</tbody></table>")
        if s.number == "三":
            cols = [leaf for top in d.t3_columns for leaf in top.leaves()]
            app = d.t3_columns[0]
            org = next(n for n in app.children if n.is_group)
            h.append('<table border="1"><tr><td colspan="3" rowspan="3">' + spec.T3_CORNER + "</td>"
                     f'<td colspan="{len(cols)}">{app.label}</td></tr><tr>')
            for n in app.children:
                h.append(f'<td colspan="{len(org.children)}">{n.label}</td>' if n.is_group
                         else f'<td rowspan="2">{split(n.label)}</td>')
            h.append("</tr><tr>" + "".join(f"<td>{split(c.label)}</td>" for c in org.children) + "</tr>")

            def rows(nodes, depth: int, first: bool) -> None:
                for n in nodes:
                    leaves = list(n.leaves())
                    if n.is_group:
                        h.append("<tr>")  # the group's label opens the row of its first leaf
                        h.append(f'<td rowspan="{len(leaves)}">{n.label.replace("年度", " 年度 ")}</td>')
                        first_child = True
                        for ch in n.children:
                            if not first_child:
                                h.append("<tr>")
                            if ch.is_group:
                                h.append(f'<td rowspan="{len(list(ch.leaves()))}">{ch.label}</td>')
                                for k, leaf in enumerate(ch.children):
                                    if k:
                                        h.append("<tr>")
                                    h.append(f"<td>{leaf.label}</td>" + "".join(
                                        cell(spec.cell_name("三", leaf.key, c.key)) for c in cols) + "</tr>")
                            else:
                                h.append(f'<td colspan="2">{ch.label}</td>' + "".join(
                                    cell(spec.cell_name("三", ch.key, c.key)) for c in cols) + "</tr>")
                            first_child = False
                    else:
                        h.append(f'<tr><td colspan="3">{n.label}</td>' + "".join(
                            cell(spec.cell_name("三", n.key, c.key)) for c in cols) + "</tr>")

            rows(d.t3_rows, 0, True)
            h.append("</table>")
        if s.number == "四":
            groups = spec._t4_leaf_groups()
            h.append('<table border="1"><tr>' + "".join(
                f'<td colspan="{len(list(g.leaves()))}">{g.label}</td>' for g in d.t4_groups) + "</tr><tr>")
            h.append("".join(f'<td rowspan="2">{split(r.label)}</td>' for r in d.t4_groups[0].children))
            h.append("".join(f'<td colspan="{len(g.children)}">{g.label}</td>' for g, path in groups if path) + "</tr>")
            h.append("<tr>" + "".join(f"<td>{r.label}</td>" for g, path in groups if path for r in g.children)
                     + "</tr><tr>" + "".join(cell(spec.cell_name("四", g.key, r.key)) for g, _ in groups
                                             for r in g.children) + "</tr></table>")
        if s.number == "五":
            h.append("<p>（一）存在的问题。问题甲。</p><p>（二）改进措施。措施乙。</p>")
        if s.number == "六":
            h.append("<p>本年度未收取信息处理费。</p><p>无。</p>")
    h.append("</div></body></html>")
    return "".join(h)


def test_a_cms_html_page_with_spans_split_labels_blanks_and_full_width_digits(tmp_path):
    rnd = random.Random(14)
    values = {c.name: (Decimal("12.5") if c.kind == "money" else rnd.randint(0, 30)) for c in spec.CELLS}
    blank, fullwidth = spec.cell_name("三", "withheld_secret", "legal"), spec.cell_name("三", "new", "natural")
    path = tmp_path / "page.html"
    path.write_bytes(_cms_page(values, blank, fullwidth).encode("gb18030"))
    rec = recognise.recognise(document.extract(path))
    assert (rec.agency, rec.year) == ("测试县测试局", 2024)
    values[blank] = 0
    got = {n: c.value for n, c in rec.cells.items()}
    assert got == values
    assert rec.cells[blank].status == recognise.BLANK and "空白" in rec.cells[blank].note
    assert rec.texts["TXT_problems"] == "问题甲。" and rec.texts["TXT_improvements"] == "措施乙。"
    assert rec.texts["FEE_fee_charged"] == spec.NO and rec.texts["TXT_other_matters"] == "无。"
    result = import_sources([path], tmp_path / "out", jobs=1)
    assert result.sources[0].status == "ok", result.sources[0].verdict


def test_not_a_report_and_a_2019_format_report(tmp_path):
    page = tmp_path / "news.html"
    page.write_text("<html><body><p>关于开展春季植树活动的通知</p></body></html>", encoding="utf-8")
    old = tmp_path / "old.md"
    old.write_text(f"# 某局2019{spec.REPORT_TITLE_SUFFIX}\n\n" + "\n".join(
        "|" + "|".join(["信息内容", *spec.OLD_FORMAT_HEADERS[i:i + 3]]) + "|" for i in (0, 3, 6)), encoding="utf-8")
    result = import_sources([page, old], tmp_path / "out", jobs=1)
    assert [s.verdict for s in result.sources] == ["不是年度报告", "2019年旧格式"]
    assert not any(s.workbook for s in result.sources) and result.exit_code == 1


def test_a_2019_format_page_is_said_so_on_the_console_with_its_labels_whole(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    got = CliRunner().invoke(app, ["import", str(FIXTURES / "pingtan_2019_page.html"), "--output", str(tmp_path)])
    assert "2019年旧格式" in got.output
    line = next(x for x in got.output.splitlines() if "试行格式" in x)
    assert "本年新制作数量" in line and "本年新公开数量" in line  # labels broken over lines in the page: whole
