"""Layout tests that look: LibreOffice turns agency reports into PDF pages and the pages are read back (pypdf).

For the sample county's twelve agencies and for a county of real-sized agencies (names of 19–32 characters):
the title breaks only at a word boundary (its lines are render.title_lines: the name, then the year), table 三
starts and ends on one page, the page numbers sit on the right of odd pages and the left of even pages, the
last page ends with the signature block, and every font is embedded and the Chinese ones are CJK fonts.

Skipped with a reason when LibreOffice is not installed, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pypdf
import pytest
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
def sample_pdfs(tmp_path_factory) -> list[tuple[str, Path]]:
    """(agency name, PDF) of every agency report of the sample county."""
    _need_soffice()
    out = tmp_path_factory.mktemp("sample")
    ws = workspace.load(SAMPLE)
    run.run(ws, YEAR, out, render=True, jobs=2)
    docs = {}
    for a in ws.agencies:
        path = out / str(YEAR) / render.agency_filename(a.name, YEAR)
        assert path.is_file(), path
        docs[a.name] = path
    pdfs = _convert(list(docs.values()), out / "pdf")
    return list(zip(docs, pdfs))


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


def _both(sample_pdfs, long_pdfs):
    return sample_pdfs + long_pdfs


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


def test_long_names_break_after_a_word(long_pdfs):
    assert max(len(n) for n in LONG_NAMES) >= 30
    for name, path in long_pdfs:
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


def test_table_3_starts_and_ends_on_one_page(sample_pdfs, long_pdfs):
    for _, path in _both(sample_pdfs, long_pdfs):
        _check_table_3(path)


# ------------------------------------------------------------------------------------------------ page numbers


def _page_number_x(page) -> float | None:
    """The x (points from the left edge) of the page number's "— N —" at the foot of ``page``."""
    hits: list[float] = []

    def visit(text, cm, tm, font, size):
        if "—" in text and tm[5] < 120:  # the footer: below the 35 mm bottom margin
            hits.append(tm[4])

    page.extract_text(visitor_text=visit)
    return min(hits) if hits else None


def test_page_numbers_odd_right_even_left(sample_pdfs, long_pdfs):
    for _, path in _both(sample_pdfs, long_pdfs):
        reader = pypdf.PdfReader(path)
        assert len(reader.pages) >= 3
        for n, page in enumerate(reader.pages, start=1):
            x = _page_number_x(page)
            assert x is not None, f"{path.name} page {n}: no page number"
            half = float(page.mediabox.width) / 2
            assert (x > half) if n % 2 else (x < half), f"{path.name} page {n}: page number at x={x:.0f}"
            assert f"—{n}—" in _squash(page.extract_text())


# ------------------------------------------------------------------------------------------------ signature


def test_the_last_page_ends_with_the_signature(sample_pdfs, long_pdfs):
    ws = workspace.load(SAMPLE)
    assert ws.county.signature  # the sample's county.toml leaves the default (on)
    for name, path in _both(sample_pdfs, long_pdfs):
        lines = _lines(pypdf.PdfReader(path).pages[-1])
        body = [line for line in lines if not line.startswith("—")]
        assert len(body) >= 3, f"{path.name}: the signature stands alone on the last page: {body}"
        name_lines = render.signature_lines(name, "")
        assert "".join(name_lines) == name
        assert body[-1 - len(name_lines):-1] == list(name_lines), f"{path.name}: {body[-4:]}"
        assert body[-1].startswith(f"{YEAR + 1}年") and body[-1].endswith("日"), body[-1]


# ------------------------------------------------------------------------------------------------ fonts


def test_fonts_are_embedded_and_cjk(sample_pdfs, long_pdfs):
    for _, path in _both(sample_pdfs, long_pdfs):
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

