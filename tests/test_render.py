"""Word reports: contexts as data, templates against the spec, rendered documents read back, escaping, golden XML.

Regenerate the golden files with ``NIANBAO_GOLDEN_UPDATE=1`` (``make golden``) and review ``git diff tests/golden``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.oxml.ns import qn
from docxtpl import DocxTemplate
from lxml import etree
from test_render_data import ROSTER, county_batch, make_agency, seed_agency, seed_json, workspace

from pipeline import aggregate, render, spec

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED_MD = Path(__file__).resolve().parent / "fixtures" / "reference"  # copies of ../shared (the seed, the format)
UPDATE = os.environ.get("NIANBAO_GOLDEN_UPDATE") == "1"


# ------------------------------------------------------------------------------------------------ helpers


def official_positions(table: str) -> list[tuple[int, int, int, int, str]]:
    """(r0, c0, r1, c1, expected text) of every label and number placeholder of a table, relative to the
    table's top-left, straight from spec.LABELS / spec.CELLS (title rows and table 二's reference column out)."""
    sheet = spec.SECTION[table].sheet
    out = []
    for lab in spec.LABELS:
        if lab.sheet == sheet and lab.role != "title":
            c0, r0 = spec._split_ref(lab.ref)
            c1, r1 = spec._split_ref(lab.merge_to) if lab.merge_to else (c0, r0)
            out.append((r0, c0, r1, c1, lab.text))
    for c in spec.table_cells(table):
        c0, r0 = spec._split_ref(c.ref)
        c1, r1 = spec._split_ref(c.merge_to) if c.merge_to else (c0, r0)
        out.append((r0, c0, r1, c1, c.name))
    if table == "二":
        out = [o for o in out if o[1] < spec.T2_REFERENCE_COL]
    top = min(o[0] for o in out)
    return [(r0 - top, c0 - 1, r1 - top, c1 - 1, t) for r0, c0, r1, c1, t in out]


def assert_official_table(t, table: str, values) -> None:
    """Every label equals the spec, every number equals ``values``, merges as in the spec, no extra rows."""
    positions = official_positions(table)
    assert len(t.rows) == max(p[2] for p in positions) + 1, "extra or missing rows (invented subtotals?)"
    assert len(t.columns) == max(p[3] for p in positions) + 1
    covered = set()
    for r0, c0, r1, c1, expected in positions:
        cell = t.cell(r0, c0)
        if expected in spec.CELL:
            assert cell.text == render.fmt(values[expected]), (table, expected)
        else:
            assert cell.text == expected, (table, r0, c0)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                assert t.cell(r, c)._tc is cell._tc, f"{table}: ({r},{c}) not merged into ({r0},{c0})"
                covered.add((r, c))
    # the cells outside the declared merges are distinct (no accidental merges)
    tcs = [t.cell(r0, c0)._tc for r0, c0, _, _, _ in positions]  # kept alive: ids are stable
    assert len({id(tc) for tc in tcs}) == len(positions)
    assert len(covered) == len(t.rows) * len(t.columns), "cells outside the official layout"


def headings(doc) -> list[str]:
    return [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]


def texts(doc) -> list[str]:
    return [p.text for p in doc.paragraphs]


def pretty_document_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("word/document.xml"))
    return etree.tostring(root, pretty_print=True, encoding="utf-8", xml_declaration=True)


def check_golden(path: Path, name: str) -> None:
    got = pretty_document_xml(path)
    target = GOLDEN / f"{name}.document.xml"
    if UPDATE or not target.exists():
        if not UPDATE:
            pytest.fail(f"golden file {target} missing: run with NIANBAO_GOLDEN_UPDATE=1 and review it")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(got)
    assert got == target.read_bytes(), f"{target} differs: review, then regenerate with NIANBAO_GOLDEN_UPDATE=1"


@pytest.fixture(scope="module")
def county_setup():
    batch = county_batch(2024)
    previous = county_batch(2023, seed=1)
    passed = {a.code for a in batch}
    return batch, previous, passed


# ------------------------------------------------------------------------------------------------ contexts


def test_agency_context_of_the_seed_matches_the_published_text():
    ctx = render.agency_context(seed_agency())
    d = seed_json()
    assert ctx.title == "集贤县集贤镇人民政府2024年政府信息公开工作年度报告"
    md = (SEED_MD / "集贤镇人民政府2024年政府信息公开工作年度报告.md").read_text(encoding="utf-8")
    if md:
        published = next(line for line in md.splitlines() if line.startswith("根据"))

        def norm(s: str) -> str:  # the seed's stray spaces, <url> and its 四 heading without "、"
            s = re.sub(r"\s+", "", s).replace("<", "").replace(">", "")
            return s.replace("行政复议、行政诉讼", "行政复议行政诉讼")

        assert norm(ctx.opening[0]) == norm(published)
    assert ctx.overview == tuple(d["texts"]["TXT_overview"])
    leads = [i.lead for i in ctx.general_items if i.lead]
    assert leads == ["（一）主动公开情况。", "（二）依申请公开情况。", "（三）政府信息管理。",
                     "（四）政府信息公开平台建设情况。", "（五）监督保障情况。"]
    assert [i.text for i in ctx.general_items] == [p for f in render.GENERAL_FIELDS for p in d["texts"][f]]
    assert [s.heading for s in ctx.improvement_items] == ["（一）存在的问题。", "（二）改进措施。"]
    assert ctx.improvement_items[1].paragraphs == tuple(d["texts"]["TXT_improvements"])
    assert ctx.other_matters == ("本年度未收取信息处理费。", "无。")
    assert ctx.v["T2_fees_amount"] == "0" and set(ctx.v) == {c.name for c in spec.CELLS}


def test_fee_paragraphs_when_charged():
    a = make_agency(ROSTER[1])
    f = dict(a.fields, FEE_fee_charged="是", FEE_fee_notices=2, FEE_fee_notice_amount=Decimal(300),
             FEE_fee_collected=Decimal("200.50"), TXT_fee_note="收费依据国办函〔2020〕109号。")
    a = dataclasses.replace(a, fields=f)
    assert render.fee_paragraphs(a) == (
        "本年度发出收费通知2件，通知金额300元，实际收取信息处理费200.50元。",
        "收费依据国办函〔2020〕109号。",
    )


def test_sanitise_and_paragraphs():
    assert render.sanitise("a\x00b\x1fc\ud800d\ufffee\tf") == "abcde f"
    assert render.paragraphs(" 一 \r\n\n二\r三\u2028 ") == ("一", "二", "三")
    assert render.fmt(Decimal("100.0253")) == "100.0253" and render.fmt(Decimal("1E+1")) == "10"
    assert render.fmt(7) == "7" and render.percent(Decimal("0.125")) == "+12.5%" and render.percent(None) == "—"


def test_missing_cover_fields_are_left_out_of_the_opening():
    a = make_agency(ROSTER[1])
    a = dataclasses.replace(a, fields={k: ("" if k.startswith("INFO_") and k != "INFO_agency_name" else v)
                                       for k, v in a.fields.items()})
    s = render.agency_context(a).opening[0]
    assert "联系地址" not in s and "查阅或下载" not in s and "（）" not in s
    s = render.agency_context(a, ROSTER[1]).opening[0]  # the roster fills the gaps
    assert "测试县财政局办公室" in s and "0000-1000002" in s


# ------------------------------------------------------------------------------------------------ templates


@pytest.mark.parametrize("template", [render.AGENCY_TEMPLATE, render.COUNTY_TEMPLATE])
def test_template_variables_and_context_agree(template, county_setup):
    batch, previous, passed = county_setup
    if template == render.AGENCY_TEMPLATE:
        ctx = render.agency_context(batch[0]).as_dict()
    else:
        r = aggregate.rollup(batch, passed, previous, workspace())
        ctx = render.county_context(r, workspace().county).as_dict()
    assert DocxTemplate(str(template)).get_undeclared_template_variables() == set(ctx)


@pytest.mark.parametrize("template", [render.AGENCY_TEMPLATE, render.COUNTY_TEMPLATE])
def test_template_has_one_placeholder_per_cell(template):
    with zipfile.ZipFile(template) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    names = re.findall(r"\{\{ v\.(\w+) \}\}", xml)
    assert sorted(names) == sorted(c.name for c in spec.CELLS)


def test_templates_are_up_to_date_with_the_builder(tmp_path):
    from pipeline.templates import build

    for built in build.build(tmp_path):
        committed = render.TEMPLATES / built.name
        assert built.read_bytes() == committed.read_bytes(), f"run python -m pipeline.templates.build ({built.name})"


def test_template_styles_carry_the_east_asian_fonts():
    with zipfile.ZipFile(render.AGENCY_TEMPLATE) as z:
        styles = z.read("word/styles.xml").decode("utf-8")
        sect = z.read("word/document.xml").decode("utf-8")
    for font in ("仿宋_GB2312", "方正小标宋简体", "黑体", "楷体_GB2312", "宋体"):
        assert f'w:eastAsia="{font}"' in styles
    assert 'w:firstLineChars="200"' in styles and 'w:lineRule="exact"' in styles
    # A4, margins 37/35/28/26 mm (twips)
    assert re.search(r'<w:pgSz w:w="11906" w:h="16838"', sect) or re.search(r'w:w="1190[0-9]"', sect)
    for mm, attr in ((37, "top"), (35, "bottom"), (28, "left"), (26, "right")):
        assert f'w:{attr}="{round(mm / 25.4 * 1440)}"' in sect


# ------------------------------------------------------------------------------------------------ agency documents


def test_agency_report_reads_back(tmp_path):
    a = county_batch(2024)[1]
    path = render.render_agency(a, tmp_path, ROSTER[1])
    assert path.name == "测试县财政局2024年政府信息公开工作年度报告.docx"
    doc = Document(path)
    assert headings(doc) == [s.heading for s in spec.SECTIONS]
    # the title breaks between the name and the year (python-docx reads the line break as "\n")
    assert doc.paragraphs[0].text == "测试县财政局\n2024年政府信息公开工作年度报告"
    assert doc.paragraphs[0].style.name == "Title"
    # the signature block (county.toml signature, default on): a blank line and the name (no 填报日期 here)
    assert [(p.text, p.style.name) for p in doc.paragraphs[-2:]] == [("", "Signature"), ("测试县财政局", "Signature")]
    unsigned = Document(render.render_agency(a, tmp_path / "unsigned", ROSTER[1], signature=False))
    assert "Signature" not in {p.style.name for p in unsigned.paragraphs}
    assert len(doc.tables) == 3
    for t, table in zip(doc.tables, ("二", "三", "四")):
        assert_official_table(t, table, a.values)
    body = texts(doc)
    assert "二是测试县财政局完善制度。" in body and "一是测试县财政局加强培训。" in body
    assert not any("{{" in p or "{%" in p for p in body)


def test_seed_report_reproduces_every_paragraph(tmp_path):
    a = seed_agency()
    path = render.render_agency(a, tmp_path)
    doc = Document(path)
    body = texts(doc)
    d = seed_json()
    ctx = render.agency_context(a)
    for item in ctx.general_items:
        assert item.lead + item.text in body
    for p in d["paragraphs"]:
        assert any(b == p or b.endswith(p) for b in body), p
    assert "（一）主动公开情况。" + d["texts"]["TXT_proactive"][0] in body
    for t, table in zip(doc.tables, ("二", "三", "四")):
        assert_official_table(t, table, a.values)
    labels = {c.text for t in doc.tables for row in t.rows for c in row.cells}
    assert "本年废止件数" in labels and "本年度止件数" not in labels  # the seed's typo is not carried over
    check_golden(path, "agency_seed")


def test_rendering_is_reproducible(tmp_path):
    a = seed_agency()
    one = render.render_agency(a, tmp_path / "1")
    two = render.render_agency(a, tmp_path / "2")
    assert one.read_bytes() == two.read_bytes()


HOSTILE = "A & B <c> \"q\" 'r' ]]> {{ x }} {% y %} \x01\x0b\x1f ctl \ud800 lone \ufffe end\nsecond & <line>"


def test_hostile_agency_text_keeps_the_document_valid(tmp_path):
    a = make_agency(ROSTER[1])
    fields = dict(a.fields, TXT_overview=HOSTILE, TXT_other_matters=HOSTILE, INFO_contact_office="办<公>室&")
    a = dataclasses.replace(a, fields=fields, name="测试&<局>")
    path = render.render_agency(a, tmp_path)
    with zipfile.ZipFile(path) as z:
        etree.fromstring(z.read("word/document.xml"))  # well-formed
    body = texts(Document(path))
    expected = render.paragraphs(HOSTILE)
    # \x0b (Word's manual line break) separates paragraphs like \n; other control characters vanish
    assert expected == ("A & B <c> \"q\" 'r' ]]> {{ x }} {% y %}", "ctl  lone  end", "second & <line>")
    for p in expected:
        assert p in body
    assert any("办<公>室&" in p for p in body)


# ------------------------------------------------------------------------------------------------ county document


def test_county_report_reads_back(tmp_path, county_setup):
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed, previous, ws)
    path = render.render_county(r, ws.county, tmp_path)
    doc = Document(path)
    assert headings(doc)[:6] == [s.heading for s in spec.SECTIONS]
    assert doc.paragraphs[0].text == "测试县2024年政府信息公开工作年度报告\n（全县汇总）"  # complete: no 草稿
    assert not any(p.text == spec.SUMMARY_LABELS["draft"] for p in doc.paragraphs)
    for t, table in zip(doc.tables[:3], ("二", "三", "四")):
        expected = {c.name: sum((a.values[c.name] for a in batch), Decimal(0) if c.kind == "money" else 0)
                    for c in spec.CELLS}
        assert_official_table(t, table, expected)
    # annex 1: one row per agency + total
    t = doc.tables[3]
    assert [c.text for c in t.rows[0].cells] == [spec.SUMMARY_LABELS["agency"]] + [f"{k.label}\n（件）"
                                                                                   for k in spec.KEY_FIGURES]
    assert len(t.rows) == 1 + len(batch) + 1
    for row, a in zip(t.rows[1:], r.agencies):
        assert [c.text for c in row.cells] == [a.name] + [render.fmt(a.key[k.key]) for k in spec.KEY_FIGURES]
    assert [c.text for c in t.rows[-1].cells][1:] == [render.fmt(r.key[k.key]) for k in spec.KEY_FIGURES]
    # annex 2 categories, annex 3 year on year, annex 4 completeness
    assert [row.cells[0].text for row in doc.tables[4].rows[1:]] == list(spec.CATEGORY_LABELS) + ["合计"]
    assert len(doc.tables[5].rows) == 1 + len(r.yoy)
    units = {row.cells[0].text: row.cells[1].text for row in doc.tables[5].rows[1:]}
    assert units["行政事业性收费（万元）"] == "万元" and units["新收申请"] == "件" and set(units.values()) == {"件", "万元"}
    assert len(doc.tables[6].rows) == 1 + len(ws.agencies)
    body = "\n".join(texts(doc))
    assert f"全县共收到政府信息公开申请{r.key['new']}件" in body
    # the county's figures are never followed by one agency's own paragraph as if it were the county's: the 本级
    # overview is not quoted; where its text is quoted (五、六 and the items without county figures) it is
    # attributed to it
    assert "测试县人民政府2024年概述的说明" not in body
    own = r.county_agency
    assert own is not None
    quoted = [p for p in texts(doc) if own.name in p and "年度报告：" in p]
    assert quoted and all(p.split("据", 1)[-1].startswith(f"{own.name}年度报告：") for p in quoted)
    for f in ("TXT_proactive", "TXT_on_request"):
        for para in render.paragraphs(own.fields.get(f)):
            assert para not in body, f
    with zipfile.ZipFile(path) as z:
        media = [n for n in z.namelist() if n.startswith("word/media/")]
    assert len(media) == 3


def test_county_draft_lists_what_is_missing(tmp_path, county_setup):
    batch, _, _ = county_setup
    ws = workspace()
    submitted = [a for a in batch if a.code != "T-202"]
    r = aggregate.rollup(submitted, {"T-000", "T-101", "T-102"}, [], ws)
    path = render.render_county(r, ws.county, tmp_path)
    doc = Document(path)
    first = texts(doc)[:4]
    assert first[0] == spec.SUMMARY_LABELS["draft"]
    assert any("测试县西乡人民政府" in p and spec.SUMMARY_LABELS["missing"] in p for p in first)
    assert any("测试县东镇人民政府" in p and spec.SUMMARY_LABELS["failed"] in p for p in first)
    t = doc.tables[0]
    assert t.cell(3, 1).text == render.fmt(sum(a.values["T2_normative_documents_issued"] for a in batch[:3]))
    body = "\n".join(texts(doc))
    assert "未找到2023年度数据" in body
    with zipfile.ZipFile(path) as z:
        assert len([n for n in z.namelist() if n.startswith("word/media/")]) == 2


def test_county_golden(tmp_path, county_setup):
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed - {"T-202"}, previous, ws)
    path = render.render_county(r, ws.county, tmp_path)
    check_golden(path, "county")


def test_render_writes_one_report_per_passing_agency(tmp_path, county_setup):
    batch, previous, _ = county_setup
    ws = workspace()
    passed = {"T-000", "T-102"}
    r = aggregate.rollup(batch, passed, previous, ws)
    res = render.render(r, ws.county, tmp_path)
    assert [p.name for p in res.agency_reports] == [render.agency_filename(a.name, 2024)
                                                     for a in batch if a.code in passed]
    assert res.county_report is not None and res.county_report.is_file()


def test_chart_font_is_cjk_and_draws_every_chart_character():
    """Fails, never skips: the charts' font is the shipped Simplified Chinese face (a dependency, on every
    machine) and has a glyph for each character of the county charts; tests/test_charts.py simulates the rest."""
    import pylopdf_fonts_zh_cn

    assert render.chart_font() == (str(pylopdf_fonts_zh_cn.sans_path()), 0)
    assert render.cjk_font_path() == str(pylopdf_fonts_zh_cn.sans_path())
    batch = county_batch(2024)
    r = aggregate.rollup(batch, {a.code for a in batch}, county_batch(2023, seed=1), workspace(), year=2024)
    text = "".join(render.chart_text(c) for c in render.county_charts(r))
    assert "新收" in text and render.missing_glyphs(text) == ""


def test_seed_workbook_read_back_gives_the_same_report():
    """End to end from the seed workbook (tests/fixtures/seed_jixian_2024.xlsx) through the reader."""
    from test_render_data import FIXTURES

    from pipeline import read

    xlsx = FIXTURES / "seed_jixian_2024.xlsx"
    if not xlsx.is_file():
        pytest.skip("seed workbook not generated yet (tests/fixtures/make_seed.py)")
    records = read.read_batch([xlsx], 2024, None).agency_data()
    assert len(records) == 1
    assert render.agency_context(records[0]) == render.agency_context(seed_agency())


def test_render_stage_in_one_call(tmp_path, county_setup):
    """run's render stage: render(Rollup) + county_workbook(Rollup) (by a report worker) (+ pdf)."""
    from pipeline import run

    batch, previous, _ = county_setup
    r = aggregate.rollup(batch, ["T-000", "T-101"], previous, workspace(), year=2024)
    out = run._render_stage(r, workspace(), tmp_path, pdf=False, jobs=2)
    assert len(out.agency_reports) == 2 and out.county_report.is_file() and out.county_workbook.is_file()
    assert r.completeness.passed == 2 and out.pdfs == () and all(p.is_file() for p in out.files)

# ------------------------------------------------------------------------------------------------ layout in the docx


def _style_bold(doc, name: str) -> bool:
    return bool(doc.styles[name].font.bold)


def test_county_title_differs_from_the_county_governments_own(tmp_path, county_setup):
    """The summary is not the 本级 report: its title says （全县汇总） — not only "人民政府" less — and its file too."""
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed, previous, ws)
    own = r.county_agency
    assert own is not None and own.name == "测试县人民政府"
    county = render.county_context(r, ws.county).title
    agency = render.agency_context(own).title
    assert county == "测试县2024年政府信息公开工作年度报告（全县汇总）"
    assert county.replace("人民政府", "") != agency.replace("人民政府", "")
    assert spec.SUMMARY_LABELS["county_summary"] in county and "人民政府" not in county
    assert f"《{county}》" in render.county_context(r, ws.county).opening[0]
    path = render.render_county(r, ws.county, tmp_path)
    assert path.name == county + ".docx" == render.county_filename(ws.county.name, 2024)
    assert path.name != render.agency_filename(own.name, 2024).replace("人民政府", "")


def test_annex_tables_state_units_and_bold_headers_and_totals(tmp_path, county_setup):
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed, previous, ws)
    doc = Document(render.render_county(r, ws.county, tmp_path))
    L = spec.SUMMARY_LABELS
    breakdown, categories, yoy, completeness = doc.tables[3:7]
    for t in (breakdown, categories, yoy, completeness):
        header = t.rows[0]
        assert header._tr.trPr.find(qn("w:tblHeader")) is not None  # repeated at the top of every page
        assert {p.style.name for c in header.cells for p in c.paragraphs} == {"Annex Table Header"}
    assert _style_bold(doc, "Annex Table Header") and _style_bold(doc, "Annex Table Total")
    assert not _style_bold(doc, "Annex Table Text")
    for t in (breakdown, categories):
        last = t.rows[-1]
        assert last.cells[0].text == L["total_row"]
        assert {p.style.name for c in last.cells for p in c.paragraphs} <= {"Annex Table Total",
                                                                           "Annex Table Total Left"}
    assert categories.rows[0].cells[1].text == f"{L['agency_count']}\n（{L['unit_agencies']}）"
    assert [c.text for c in yoy.rows[0].cells][:2] == [L["item"], L["unit"]]


def test_figure_and_caption_are_one_unit_in_the_template():
    doc = Document(render.COUNTY_TEMPLATE)
    assert doc.styles["Figure"].paragraph_format.keep_with_next
    assert doc.styles["Caption"].paragraph_format.keep_together
    assert doc.styles["Caption"].paragraph_format.alignment == 1  # centred
    texts = [(p.text, p.style.name) for p in doc.paragraphs]
    i = texts.index(("{{ ch.image }}", "Figure"))
    assert texts[i + 1] == ("{{ ch.caption }}", "Caption")  # the caption below the picture
    # the charts' annex is a portrait section of its own; the annex tables' section is landscape
    orientation = [s.orientation for s in doc.sections]
    assert orientation == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT]


def test_charts_are_numbered_in_order_below_their_pictures(tmp_path, county_setup):
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed, previous, ws)
    doc = Document(render.render_county(r, ws.county, tmp_path))
    body = doc.element.body
    pictures = [p for p in body.iter(qn("w:p")) if p.find(".//" + qn("w:drawing")) is not None]
    captions = [p.getnext() for p in pictures]
    got = ["".join(t.text for t in c.iter(qn("w:t"))) for c in captions]
    assert got == [render.figure_caption(i, ch.caption) for i, ch in enumerate(render.county_charts(r), start=1)]
    assert got[0].startswith("图1\u3000") and got[2].startswith("图3\u3000")
    # each picture at the size it was drawn (never wider than the portrait text): the charts' text true to size
    for p, ch in zip(pictures, render.county_charts(r)):
        extent = p.find(".//" + qn("wp:extent"))
        w, h = render.chart_size_mm(ch)
        assert abs(int(extent.get("cx")) / 36000 - w) < 0.1 and abs(int(extent.get("cy")) / 36000 - h) < 0.1
        assert w <= 156 and h <= render.CHART_MAX_HEIGHT_MM


def test_a_summary_whose_charts_cannot_be_drawn_leaves_them_out(tmp_path, county_setup, monkeypatch):
    """No CJK font at all: every chart is left out with its caption, the charts' annex too (no heading without a
    chart, no blank portrait page at the end), and the warnings say which; the rest of the summary is written."""
    batch, previous, passed = county_setup
    ws = workspace()
    r = aggregate.rollup(batch, passed, previous, ws)
    monkeypatch.setattr(render, "chart_font", lambda: None)
    done = render.render_county_document(r, ws.county, tmp_path)
    assert len(done.warnings) == 3
    for w, ch in zip(done.warnings, render.county_charts(r)):
        assert ch.caption in w and "未找到中文字体" in w and "略去" in w
    doc = Document(done.path)
    with zipfile.ZipFile(done.path) as z:
        assert not [n for n in z.namelist() if n.startswith("word/media/")]
    texts_ = [p.text for p in doc.paragraphs]
    assert not any(t.startswith(f"{spec.SUMMARY_LABELS['annex']}5") for t in texts_)
    assert not any(t.startswith(spec.SUMMARY_LABELS["figure"] + "1") for t in texts_)
    assert [s.orientation for s in doc.sections] == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE]
    assert doc.tables[-1].rows[0].cells[-1].text == spec.SUMMARY_LABELS["status"]  # annex 4 ends it
    assert render.render_county(r, ws.county, tmp_path / "again").is_file()  # never an exception


def test_agency_tables_stay_whole_and_three_starts_a_page():
    """Tables 二, 三, 四 each kept on one page (every row's paragraphs keep with the next, rows never split); the
    heading of 三 always starts a page, right after table 二 (no spacer paragraph left to fall on a page alone)."""
    doc = Document(render.AGENCY_TEMPLATE)
    for t in doc.tables:
        rows = list(t.rows)
        for row in rows:
            assert row._tr.trPr.find(qn("w:cantSplit")) is not None
        for row in rows[:-1]:
            assert all(p.paragraph_format.keep_with_next for c in row.cells for p in c.paragraphs)
    body = list(doc.element.body.iterchildren())
    heading = next(el for el in body if el.tag == qn("w:p")
                   and "".join(t.text for t in el.iter(qn("w:t"))) == spec.SECTION["三"].heading)
    assert heading.find(qn("w:pPr") + "/" + qn("w:pageBreakBefore")) is not None
    assert heading.getprevious().tag == qn("w:tbl")  # table 二, then 三's heading
    assert doc.styles["Heading 1"].paragraph_format.keep_with_next
