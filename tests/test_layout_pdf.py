"""Layout tests that look: LibreOffice turns the reports into PDF pages and the pages are read back (pypdf).

Agency reports — of the sample county's twelve agencies, of agencies with long names (19–32 characters) and of a
real-sized county (below): the title breaks only at a word boundary (its lines are render.title_lines: the name,
then the year), table 二 stays on one page with its heading, table 三 starts a page (always) and ends on it, no
page is blank, the page numbers sit on the right of odd pages and the left of even pages, the last page ends with
the signature block, and every font is embedded and the Chinese ones are CJK fonts.

County summaries — of the sample county and of the real-sized county: the title (with （全县汇总）) set whole at
its lines, tables 二 and 三 as above, every chart on one page with its caption (图N　…) below it, the annex
tables' header rows bold and repeated on every page a table runs onto, their 合计 row bold, fonts embedded, CJK.

The real-sized county is the sample county's workbooks, copied and edited (openpyxl): six agencies renamed with
long names, 24 more township workbooks (36 agencies: annex 1 runs over two pages), 万元 fees with six decimals
(100.025312), and one agency that fails validation (错误: R1), so the county summary is a draft without it.

Skipped with a reason when LibreOffice is not installed, except under CI=true, where it must run.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from docx import Document
from openpyxl import load_workbook
from test_render_data import make_agency

from pipeline import pdf, render, run, spec, workspace
from pipeline.templates import build
from pipeline.workspace import Agency

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
IN_CI = os.environ.get("CI", "").lower() == "true"

#: Real agencies' names are long: a county of them (each breaks after a word, never inside one).
LONG_NAMES = (
    "中共示例县委员会机构编制委员会办公室示例县人民政府外事办公室",
    "示例县经济技术开发区管理委员会社会事务局综合行政执法大队",
    "示例县住房和城乡建设局城市管理综合行政执法大队市容环境卫生管理所",
    "示例县卫生健康局疾病预防控制中心和妇幼保健计划生育服务中心",
    "中国人民政治协商会议示例县委员会办公室",
    "示例县人民政府国有资产监督管理委员会办公室",
)


def _need_soffice() -> None:
    if pdf.find_soffice() is None:
        if IN_CI:
            pytest.fail("soffice is required in CI (install libreoffice-writer-nogui and fonts-noto-cjk)")
        pytest.skip("LibreOffice (soffice) not installed: the reports' pages are not looked at on this machine")


def _convert(docs: list[Path], out: Path) -> list[Path]:
    result = pdf.convert(docs, out)
    assert result.ok, result.message
    return list(result.pdfs)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> tuple[list[tuple[str, Path]], tuple[Path, Path]]:
    """(agency name, PDF) of every agency report of the sample county, and its county summary (docx, PDF)."""
    _need_soffice()
    out = tmp_path_factory.mktemp("sample")
    ws = workspace.load(SAMPLE)
    run.run(ws, YEAR, out, render=True, jobs=2)
    docs = {}
    for a in ws.agencies:
        path = out / str(YEAR) / render.agency_filename(a.name, YEAR)
        assert path.is_file(), path
        docs[a.name] = path
    county = out / str(YEAR) / render.county_filename(ws.county.name, YEAR)
    pdfs = _convert(list(docs.values()) + [county], out / "pdf")
    return list(zip(docs, pdfs[:-1])), (county, pdfs[-1])


@pytest.fixture(scope="module")
def sample_pdfs(sample_run) -> list[tuple[str, Path]]:
    return sample_run[0]


@pytest.fixture(scope="module")
def long_pdfs(tmp_path_factory) -> list[tuple[str, Path]]:
    """(agency name, PDF) for a county whose agencies have long names, each signed with its 填报日期."""
    _need_soffice()
    out = tmp_path_factory.mktemp("long")
    docs = {}
    for i, name in enumerate(LONG_NAMES):
        agency = Agency(f"L-{i:03d}", name, spec.CATEGORY_LABELS[1], f"{name}办公室", "示例县城关镇人民路1号",
                        "556600", "0855-3221001", "示例县人民政府网-政府信息公开-政府信息公开年报",
                        f"https://www.shilixian.gov.cn/zwgk/xxgknb/l{i:03d}/")
        a = make_agency(agency, YEAR, seed=i)
        a.fields["INFO_fill_date"] = f"{YEAR + 1}-01-{10 + i:02d}"
        docs[name] = render.render_agency(a, out, agency)
    pdfs = _convert(list(docs.values()), out / "pdf")
    return list(zip(docs, pdfs))


def _squash(text: str) -> str:
    return "".join(text.split())


def _lines(page) -> list[str]:
    return [_squash(line) for line in page.extract_text().splitlines() if line.strip()]


def _page_texts(path: Path) -> list[str]:
    return [_squash(p.extract_text()) for p in pypdf.PdfReader(path).pages]


def _t3_labels() -> tuple[str, str]:
    """The labels of table 三's first and last rows (as the template has them)."""
    _, _, items = build.spec_grid("三")
    rows = sorted((i for i in items if i.role == "row"), key=lambda i: (i.r0, i.c0))
    return _squash(rows[0].text), _squash(rows[-1].text)


def _agencies(sample_pdfs, long_pdfs, real_county):
    """(name, PDF) of every agency report looked at: the sample's, the long names', the real-sized county's."""
    return sample_pdfs + long_pdfs + real_county["agencies"]


# ------------------------------------------------------------------------------------------------ a real-sized county

#: The names the real-sized county gives six of the sample's agencies (roster and workbooks, both years).
REAL_NAMES = LONG_NAMES
#: Its 万元 fees (table 二 （八）) for those six agencies: six decimals, as real reports print them.
REAL_FEES = ("100.025312", "0.000125", "12.5", "3.141593", "0", "7.654321")
#: Its 24 more agencies: townships, each a copy of the sample's 新华街道 workbooks under a code and name of its own.
REAL_TOWNS = tuple(f"示例县{t}人民政府" for t in (
    "南山镇", "北坡镇", "西岭乡", "东湖镇", "石门镇", "龙泉镇", "凤凰乡", "桃源镇", "清水河镇", "梅花乡", "金沙镇", "银杏乡",
    "白马镇", "黄土岭乡", "红岩镇", "青龙镇", "长岭镇", "双河镇", "高桥乡", "新店镇", "三江口镇", "五里牌乡", "大坪镇", "小溪乡",
))
#: The agency whose 2024 workbook breaks R1 (新收·自然人 typed 3 too high): it fails (错误), so no report.
REAL_FAILING = REAL_TOWNS[5]


def _cell(wb, name: str):
    sheet, ref = wb.defined_names[name].attr_text.split("!")
    return wb[sheet.strip("'")][ref.replace("$", "")]


def _real_sized_county(root: Path) -> workspace.Workspace:
    """The sample county, copied to ``root`` and edited as REAL_NAMES / REAL_FEES / REAL_TOWNS / REAL_FAILING say."""
    shutil.copytree(SAMPLE, root)
    roster_file = root / "agencies.csv"
    with open(roster_file, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0])
    renamed = {row["code"]: name for row, name in zip(rows[1:], REAL_NAMES)}
    fees = dict(zip(renamed, REAL_FEES))
    source = rows[-1]
    towns = {f"SLX-3{i:02d}": name for i, name in enumerate(REAL_TOWNS)}
    for row in rows:
        row["name"] = renamed.get(row["code"], row["name"])
    rows += [dict(source, code=code, name=name) for code, name in towns.items()]
    with open(roster_file, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    natural_new = spec.cell_name("三", "new", "natural")
    for year in (YEAR - 1, YEAR):
        for path in sorted((root / str(year)).glob("*.xlsx")):
            wb = load_workbook(path)
            code = _cell(wb, "INFO_agency_code").value
            if code in renamed:
                _cell(wb, "INFO_agency_name").value = renamed[code]
                if year == YEAR:
                    _cell(wb, spec.cell_name("二", "fees", "amount")).value = float(fees[code])
                wb.save(path)
            if code == source["code"]:
                for town_code, name in towns.items():
                    _cell(wb, "INFO_agency_code").value = town_code
                    _cell(wb, "INFO_agency_name").value = name
                    new = _cell(wb, natural_new)
                    base = new.value
                    if year == YEAR and name == REAL_FAILING:
                        new.value = int(base) + 3
                    wb.save(path.parent / f"{name}{year}年报.xlsx")
                    new.value = base
    return workspace.load(root)


@pytest.fixture(scope="module")
def real_county(tmp_path_factory) -> dict:
    """The real-sized county run: its result, workspace, the county summary (docx, PDF) and the long-named
    agencies' reports (name, PDF)."""
    _need_soffice()
    base = tmp_path_factory.mktemp("real")
    ws = _real_sized_county(base / "county")
    out = base / "out"
    result = run.run(ws, YEAR, out, render=True, jobs=2)
    county = out / str(YEAR) / render.county_filename(ws.county.name, YEAR)
    docs = [out / str(YEAR) / render.agency_filename(name, YEAR) for name in REAL_NAMES]
    assert all(p.is_file() for p in docs + [county])
    pdfs = _convert(docs + [county], base / "pdf")
    return {"result": result, "ws": ws, "out": out / str(YEAR), "county": (county, pdfs[-1]),
            "agencies": list(zip(REAL_NAMES, pdfs[:-1]))}


def test_the_real_sized_county_is_what_it_says(real_county):
    """36 agencies, one failed (错误, no report), the county summary a draft naming it; 6-decimal 万元 exactly."""
    result, ws, out = real_county["result"], real_county["ws"], real_county["out"]
    assert len(ws.agencies) == 36 and result.exit_code == 1 and result.errors >= 1
    assert not (out / render.agency_filename(REAL_FAILING, YEAR)).exists()
    assert len(list(out.glob("*年度报告.docx"))) == 35
    county_docx, county_pdf = real_county["county"]
    text = "".join(_page_texts(county_pdf))
    assert text.startswith(spec.SUMMARY_LABELS["draft"]) and REAL_FAILING in text
    for (name, path), fee in zip(real_county["agencies"], REAL_FEES):
        if Decimal(fee):
            assert fee in "".join(_page_texts(path)), name  # as typed: 100.025312, 12.5
    names = {a.code: a.name for a in ws.agencies}
    county_fees = Decimal(0)
    for p in (ws.root / str(YEAR)).glob("*.xlsx"):
        wb = load_workbook(p)
        if names[_cell(wb, "INFO_agency_code").value] != REAL_FAILING:
            county_fees += Decimal(str(_cell(wb, spec.cell_name("二", "fees", "amount")).value or 0))
    printed = render.fmt(county_fees)
    assert len(printed.split(".")[1]) == 6 and printed in text  # the sum exactly: six decimals, never rounded


# ------------------------------------------------------------------------------------------------ the title


def _check_title(name: str, path: Path) -> None:
    want = render.title_lines(name, YEAR)
    got = _lines(pypdf.PdfReader(path).pages[0])[: len(want)]
    assert got == list(want), f"{path.name}: the title is set as {got}, not at its word boundaries {want}"
    assert got[-1] == f"{YEAR}{spec.REPORT_TITLE_SUFFIX}"  # the last line: the year and the rest, whole


def test_sample_titles_break_between_the_name_and_the_year(sample_pdfs):
    assert len(sample_pdfs) == 12
    for name, path in sample_pdfs:
        _check_title(name, path)


def test_long_names_break_after_a_word(long_pdfs, real_county):
    assert max(len(n) for n in LONG_NAMES) >= 30
    for name, path in long_pdfs + real_county["agencies"]:
        _check_title(name, path)
        assert len(render.title_lines(name, YEAR)) >= 3  # too long for one line: the name itself breaks
    assert render.title_lines(LONG_NAMES[0], YEAR)[:2] == ("中共示例县委员会机构编制委员会办公室", "示例县人民政府外事办公室")


# ------------------------------------------------------------------------------------------------ table 三


def _check_table_3(path: Path) -> None:
    first, last = _t3_labels()
    heading = _squash(spec.SECTION["三"].heading)
    pages = _page_texts(path)
    where = {what: [i for i, t in enumerate(pages) if what in t] for what in (heading, first, last)}
    assert all(len(v) == 1 for v in where.values()), f"{path.name}: {where}"
    assert where[heading] == where[first] == where[last], f"{path.name}: table 三 is split across pages {where}"


def _agency_and_county_pdfs(sample_run, long_pdfs, real_county) -> list[Path]:
    return ([p for _, p in sample_run[0] + long_pdfs + real_county["agencies"]]
            + [sample_run[1][1], real_county["county"][1]])


def test_table_3_starts_and_ends_on_one_page(sample_run, long_pdfs, real_county):
    for path in _agency_and_county_pdfs(sample_run, long_pdfs, real_county):
        _check_table_3(path)


def test_table_3_always_starts_a_page_and_no_page_is_blank(sample_run, long_pdfs, real_county):
    """The page break before 三 is unconditional (its heading's pageBreakBefore): the heading is the first line of
    its page; and no page holds nothing but its number (a spacer paragraph pushed onto a page of its own)."""
    heading = _squash(spec.SECTION["三"].heading)
    for path in _agency_and_county_pdfs(sample_run, long_pdfs, real_county):
        for n, page in enumerate(pypdf.PdfReader(path).pages, start=1):
            lines = [x for x in _lines(page) if not re.fullmatch(r"—\d+—", x)]
            assert lines, f"{path.name} page {n} is blank"
            if heading in lines:
                assert lines[0] == heading, f"{path.name} page {n}: 三 does not start the page: {lines[:3]}"


# ------------------------------------------------------------------------------------------------ table 二


def _t2_labels() -> list[str]:
    """Table 二's labels found nowhere else in a report: its blocks' titles and the money column's header."""
    _, _, items = build.spec_grid("二")
    return [_squash(i.text) for i in items if i.role == "block" or "（单位：" in i.text]


def _check_table_2(path: Path) -> None:
    heading = _squash(spec.SECTION["二"].heading)
    pages = _page_texts(path)
    (page,) = [i for i, t in enumerate(pages) if heading in t]
    missing = [x for x in _t2_labels() if x not in pages[page]]
    assert not missing, f"{path.name}: table 二 leaves its heading's page {page + 1}: {missing} on the next"


def test_table_2_stays_on_one_page_with_its_heading(sample_run, long_pdfs, real_county):
    """Long names (a title of 2–3 lines) and long texts push table 二 to the foot of page 2: it moves whole."""
    assert len(_t2_labels()) == 5
    for path in _agency_and_county_pdfs(sample_run, long_pdfs, real_county):
        _check_table_2(path)


# ------------------------------------------------------------------------------------------------ page numbers


def _page_number_x(page) -> float | None:
    """The x (points from the left edge) of the page number's "— N —" at the foot of ``page``."""
    hits: list[float] = []

    def visit(text, cm, tm, font, size):
        if "—" in text and tm[5] < 120:  # the footer: below the 35 mm bottom margin
            hits.append(tm[4])

    page.extract_text(visitor_text=visit)
    return min(hits) if hits else None


def test_page_numbers_odd_right_even_left(sample_run, long_pdfs, real_county):
    """Agency reports and county summaries (their landscape and portrait annex pages too)."""
    for path in _agency_and_county_pdfs(sample_run, long_pdfs, real_county):
        reader = pypdf.PdfReader(path)
        assert len(reader.pages) >= 3
        for n, page in enumerate(reader.pages, start=1):
            x = _page_number_x(page)
            assert x is not None, f"{path.name} page {n}: no page number"
            half = float(page.mediabox.width) / 2
            assert (x > half) if n % 2 else (x < half), f"{path.name} page {n}: page number at x={x:.0f}"
            assert f"—{n}—" in _squash(page.extract_text())


# ------------------------------------------------------------------------------------------------ signature


def test_the_last_page_ends_with_the_signature(sample_pdfs, long_pdfs, real_county):
    ws = workspace.load(SAMPLE)
    assert ws.county.signature  # the sample's county.toml leaves the default (on)
    for name, path in _agencies(sample_pdfs, long_pdfs, real_county):
        lines = _lines(pypdf.PdfReader(path).pages[-1])
        body = [line for line in lines if not line.startswith("—")]
        assert len(body) >= 3, f"{path.name}: the signature stands alone on the last page: {body}"
        name_lines = render.signature_lines(name, "")
        assert "".join(name_lines) == name
        assert body[-1 - len(name_lines):-1] == list(name_lines), f"{path.name}: {body[-4:]}"
        assert body[-1].startswith(f"{YEAR + 1}年") and body[-1].endswith("日"), body[-1]


# ------------------------------------------------------------------------------------------------ fonts


def test_fonts_are_embedded_and_cjk(sample_run, long_pdfs, real_county):
    for path in _agency_and_county_pdfs(sample_run, long_pdfs, real_county):
        names: dict[str, bool] = {}
        for page in pypdf.PdfReader(path).pages:
            for font in page["/Resources"]["/Font"].values():
                font = font.get_object()
                desc = font.get("/FontDescriptor")
                if desc is None and "/DescendantFonts" in font:
                    desc = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
                desc = desc.get_object() if desc is not None else {}
                names[str(font["/BaseFont"])] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        assert all(names.values()), f"{path.name}: fonts not embedded: {[n for n, e in names.items() if not e]}"
        assert any("CJK" in n for n in names), f"{path.name}: no CJK font among {sorted(names)}"



# ------------------------------------------------------------------------------------------------ county summary


def _county_pdfs(sample_run, real_county) -> list[tuple[Path, Path]]:
    return [sample_run[1], real_county["county"]]


def test_county_title_is_set_whole_and_says_it_is_the_summary(sample_run, real_county):
    ws = workspace.load(SAMPLE)
    want = list(render.county_title_lines(ws.county.name, YEAR))
    assert want[-1] == f"（{spec.SUMMARY_LABELS['county_summary']}）"
    for _, path in _county_pdfs(sample_run, real_county):
        lines = _lines(pypdf.PdfReader(path).pages[0])
        start = lines.index(want[0])  # after 草稿 and its notes in a draft
        assert lines[start:start + len(want)] == want, f"{path.name}: {lines[start:start + len(want)]}"
    assert _lines(pypdf.PdfReader(sample_run[1][1]).pages[0])[:len(want)] == want  # complete: the first lines


def _figures_and_captions(page) -> tuple[list[tuple[float, float]], list[tuple[float, str]]]:
    """The images drawn on ``page`` as (bottom, top) in points, and its figure captions as (baseline, text)."""
    images: list[tuple[float, float]] = []
    chunks: list[tuple[float, str]] = []
    xobjects = page["/Resources"].get("/XObject", {})

    def before(op, args, cm, tm):
        if op == b"Do" and xobjects[args[0]].get_object().get("/Subtype") == "/Image":
            images.append((cm[5], cm[5] + cm[3]))

    def text(t, cm, tm, font, size):
        if t.strip():
            chunks.append((round(tm[5], 1), t))

    page.extract_text(visitor_operand_before=before, visitor_text=text)
    lines: dict[float, str] = {}
    for y, t in chunks:
        lines[y] = lines.get(y, "") + t
    figure = spec.SUMMARY_LABELS["figure"]
    captions = [(y, _squash(t)) for y, t in lines.items() if re.match(rf"{figure}\d+\s*\S", t.strip())]
    return images, captions


def test_every_chart_keeps_its_caption_below_it_on_one_page(sample_run, real_county):
    """Each picture and its caption (图N　…, numbered in order, centred) on one page, the caption right below."""
    for docx, path in _county_pdfs(sample_run, real_county):
        doc = Document(docx)
        want = [p.text for p in doc.paragraphs if p.style.name == build.S_CAPTION]
        assert len(want) == 3 and [w.split("\u3000")[0] for w in want] == ["图1", "图2", "图3"]
        caption_style = doc.styles[build.S_CAPTION].paragraph_format
        assert caption_style.alignment == 1  # centred
        assert doc.styles[build.S_FIGURE].paragraph_format.keep_with_next
        got = []
        for n, page in enumerate(pypdf.PdfReader(path).pages, start=1):
            images, captions = _figures_and_captions(page)
            assert len(images) == len(captions), f"{path.name} page {n}: {len(images)} charts, captions {captions}"
            for (bottom, top), (y, text) in zip(sorted(images, reverse=True), sorted(captions, reverse=True)):
                assert y < bottom < y + 40, f"{path.name} page {n}: {text} is not right below its chart"
                got.append(text)
        assert got == [_squash(w) for w in want]


def _chunks(page) -> list[tuple[str, str]]:
    """(text, font name) of each piece of text drawn on ``page``."""
    out: list[tuple[str, str]] = []

    def visit(t, cm, tm, font, size):
        if t.strip():
            out.append((t.strip(), str(font.get("/BaseFont", "")) if font else ""))

    page.extract_text(visitor_text=visit)
    return out


def _annex_chunks(path: Path, heading: str, until: str) -> list[list[tuple[str, str]]]:
    """``_chunks`` of each page of an annex: from the page of its heading to the one where the next annex begins
    (that one only if the annex's last rows are on it)."""
    out = []
    for page in pypdf.PdfReader(path).pages:
        chunks = _chunks(page)
        text = _squash("".join(t for t, _ in chunks))
        if not out and heading not in text:
            continue
        if out and text.startswith(until):
            break
        out.append(chunks)
        if until in text:
            break
    return out


def test_annex_tables_have_bold_repeated_headers_and_a_bold_total(sample_run, real_county):
    """附件1 runs over two pages for 36 agencies: its header row (bold, with the units) heads both; 合计 is bold."""
    L = spec.SUMMARY_LABELS
    unit = spec.CELL[spec.KEY_FIGURES[0].cells[0]].unit
    for _, path in _county_pdfs(sample_run, real_county):
        pages = _annex_chunks(path, f"{L['annex']}1：{L['annex_breakdown']}", f"{L['annex']}2：")
        for chunks in pages:
            fonts = {t: f for t, f in chunks}
            assert L["agency"] in fonts and "Bold" in fonts[L["agency"]], f"{path.name}: header not bold/repeated"
            assert f"（{unit}）" in fonts
        totals = [f for chunks in pages for t, f in chunks if t == L["total_row"]]
        assert totals and all("Bold" in f for f in totals)  # 附件1's, and 附件2's on the same page
    assert len(_annex_chunks(real_county["county"][1], f"{L['annex']}1：", f"{L['annex']}2：")) >= 2
