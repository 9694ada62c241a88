"""全县汇总.xlsx: official layout with county totals, per-agency breakdown with a total row, year on year,
formula-safe agency text, reproducible bytes — and a workbook for people: a title with county and year on every
sheet, print setup (A4, orientation, fitted, header rows repeated, page numbers), Chinese multi-row headers on
各单位明细 without defined names, frozen panes, widths and row heights for wrapped text; LibreOffice prints it
as such (pages read back with pypdf)."""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal

import openpyxl
import pypdf
import pytest
from openpyxl.cell.cell import MergedCell
from test_render_data import county_batch, workspace

from pipeline import aggregate, county_xlsx, pdf, spec

L = spec.SUMMARY_LABELS
LONG_NAME = "测试县农业农村局（测试县乡村振兴局）综合行政执法大队"  # 28 characters: wraps in the name column
TOP = county_xlsx.TITLE_ROWS  # rows above each sheet's content


@pytest.fixture(scope="module")
def rollup():
    batch = county_batch(2024)
    batch[1] = dataclasses.replace(batch[1], name='=HYPERLINK("http://x","点我")')
    batch[2] = dataclasses.replace(batch[2], name=LONG_NAME)
    return aggregate.rollup(batch, {a.code for a in batch}, county_batch(2023, seed=1), workspace())


@pytest.fixture(scope="module")
def book(tmp_path_factory, rollup):
    return openpyxl.load_workbook(county_xlsx.write(rollup, tmp_path_factory.mktemp("county")))


def _down(ref: str, rows: int = TOP) -> str:
    col, row = spec._split_ref(ref)
    return spec._a1(col, row + rows)


def _anchor(ws, row: int, col: int):
    """The value shown at (row, col): a merged range's top-left value."""
    cell = ws.cell(row=row, column=col)
    if not isinstance(cell, MergedCell):
        return cell.value
    rng = next(r for r in ws.merged_cells.ranges if cell.coordinate in r)
    return ws.cell(row=rng.min_row, column=rng.min_col).value


def test_official_sheets_hold_labels_and_county_totals(tmp_path, rollup):
    path = county_xlsx.write(rollup, tmp_path)
    assert path.name == "全县汇总.xlsx"
    wb = openpyxl.load_workbook(path)
    for table in ("二", "三", "四"):
        ws = wb[spec.SECTION[table].sheet]
        for lab in spec.LABELS:
            if lab.sheet == ws.title and not (table == "二" and spec._split_ref(lab.ref)[0] >= spec.T2_REFERENCE_COL):
                assert ws[_down(lab.ref)].value == lab.text
                if lab.merge_to:
                    assert f"{_down(lab.ref)}:{_down(lab.merge_to)}" in {str(r) for r in ws.merged_cells.ranges}
        for c in spec.table_cells(table):
            got = ws[_down(c.ref)].value
            assert (Decimal(str(got)) if c.kind == "money" else got) == rollup.totals[c.name], c.name
            assert ws[_down(c.ref)].data_type == "n"


def test_breakdown_has_one_row_per_agency_and_a_total_row(book, rollup):
    ws = book[L["sheet_breakdown"]]
    first = county_xlsx.BREAKDOWN_FIRST_ROW
    names = [c.name for c in spec.CELLS]
    rows = list(ws.iter_rows(min_row=first, values_only=True))
    assert len(rows) == len(rollup.agencies) + 1
    for row, a in zip(rows, rollup.agencies):
        assert row[0] == a.code and row[1] == a.name and row[2] == a.category
        for name, v in zip(names, row[3:], strict=True):
            assert (Decimal(str(v)) if name in aggregate.money_cells() else v) == a.values[name]
    total = rows[-1]
    assert total[0] == L["total_row"]
    for name, v in zip(names, total[3:], strict=True):
        assert (Decimal(str(v)) if name in aggregate.money_cells() else v) == rollup.totals[name]


def test_breakdown_headers_are_chinese_merged_rows_without_ids(book):
    """表 / the row's groups / 行 / 列, each shown over its columns (merged), the spec's labels; no defined name
    anywhere on the sheet (the old fourth header row of English ids)."""
    ws = book[L["sheet_breakdown"]]
    top, bottom = TOP + 1, TOP + county_xlsx.BREAKDOWN_HEADER_ROWS
    assert county_xlsx.BREAKDOWN_FIRST_ROW == bottom + 1
    for j, h in enumerate((L["code"], L["agency"], L["category"]), start=1):
        assert ws.cell(row=top, column=j).value == h
        assert f"{ws.cell(row=top, column=j).coordinate}:{ws.cell(row=bottom, column=j).coordinate}" in \
            {str(r) for r in ws.merged_cells.ranges}
    for j, c in enumerate(spec.CELLS, start=4):
        assert _anchor(ws, top, j) == spec.SECTION[c.table].heading, c.name
        levels = c.row_path + (c.row,)
        shown = [_anchor(ws, r, j) for r in range(top + 1, bottom)]
        # the row's groups, then the row, the last level filling the rows left below it
        assert list(dict.fromkeys(shown)) == list(dict.fromkeys(levels)), c.name
        assert ws.cell(row=bottom, column=j).value == c.column, c.name
    # labels are merged across the columns they head: 表三's row 一、本年新收… over its 7 applicant columns
    new = [j for j, c in enumerate(spec.CELLS, start=4) if c.table == "三" and c.row_key == "new"]
    rng = next(r for r in ws.merged_cells.ranges if ws.cell(row=top + 1, column=new[0]).coordinate in r)
    assert (rng.min_col, rng.max_col, rng.max_row) == (new[0], new[-1], bottom - 1)
    values = {str(c.value) for row in ws.iter_rows() for c in row if c.value is not None}
    assert not values & {c.name for c in spec.CELLS}
    assert not any(v.startswith(("T2_", "T3_", "T4_")) for v in values)
    assert not any(v.startswith("表二/") or "/" in v for v in values if v != '=HYPERLINK("http://x","点我")')


def test_every_sheet_has_a_title_with_county_and_year(book, rollup):
    for ws in book.worksheets:
        title = ws["A1"].value
        assert title.startswith(f"{rollup.county}{rollup.year}{spec.REPORT_TITLE_SUFFIX}\n"), ws.title
        assert ws["A1"].font.b and ws["A1"].alignment.wrap_text
        assert any(str(r).startswith("A1:") for r in ws.merged_cells.ranges), ws.title
        assert ws.row_dimensions[1].height >= 2 * county_xlsx.line_height(12), ws.title


def test_print_setup_on_every_sheet(book):
    portrait = {spec.SECTION["二"].sheet, L["sheet_yoy"], L["sheet_completeness"]}
    for ws in book.worksheets:
        ps = ws.page_setup
        assert ps.paperSize == county_xlsx.PAPER_A4, ws.title
        assert ps.orientation == ("portrait" if ws.title in portrait else "landscape"), ws.title
        assert ws.print_options.horizontalCentered, ws.title
        assert ws.page_margins.left == 0.5 and ws.page_margins.bottom == 0.7, ws.title
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text, ws.title
        assert ws.print_title_rows and ws.print_title_rows.startswith("$1:"), ws.title
        if ws.title == L["sheet_breakdown"]:
            continue
        # fitToWidth / fitToHeight default to 1 in OOXML (XlsxWriter leaves a 1 out)
        assert ws.sheet_properties.pageSetUpPr.fitToPage and (ps.fitToWidth or 1) == 1, ws.title
        one_page = ws.title in {spec.SECTION[t].sheet for t in ("二", "三", "四")}
        assert (1 if ps.fitToHeight is None else ps.fitToHeight) == (1 if one_page else 0), ws.title
    ws = book[spec.SECTION["三"].sheet]  # the header rows of table 三 repeat (title, heading, 3 header rows)
    assert ws.print_title_rows == f"$1:${TOP + 4}"


def test_breakdown_prints_in_bands_with_the_agency_columns_repeated(book):
    ws = book[L["sheet_breakdown"]]
    assert ws.print_title_rows == f"$1:${county_xlsx.BREAKDOWN_FIRST_ROW - 1}"
    assert ws.print_title_cols == "$A:$C"
    assert ws.page_setup.scale == county_xlsx.BREAKDOWN_PRINT_SCALE
    assert not ws.sheet_properties.pageSetUpPr.fitToPage  # fit-to-page would ignore the bands' breaks
    breaks = [b.id for b in ws.col_breaks.brk]
    starts, col = [], 4
    for band in county_xlsx._bands():
        starts.append(col)
        col += len(band)
    assert breaks == [s - 1 for s in starts[1:]]  # a break after the last column of each band
    # table 三 one row a band, all its applicant columns together
    t3 = [b for b in county_xlsx._bands() if b[0].table == "三"]
    assert len(t3) == len({c.row_key for c in spec.table_cells("三")})
    assert all(len({c.row_key for c in b}) == 1 and len(b) == len({c.column_key for c in b}) for b in t3)
    assert ws.freeze_panes == f"D{county_xlsx.BREAKDOWN_FIRST_ROW}"


def test_widths_and_row_heights_for_wrapped_text(book, rollup):
    ws = book[L["sheet_breakdown"]]
    assert [ws.column_dimensions[c].width for c in "ABC"] == pytest.approx(county_xlsx.BREAKDOWN_FIXED_WIDTHS,
                                                                            abs=1)
    assert ws.column_dimensions["D"].width == pytest.approx(county_xlsx.BREAKDOWN_DATA_WIDTH, abs=1)
    first = county_xlsx.BREAKDOWN_FIRST_ROW
    rows = {a.name: first + i for i, a in enumerate(rollup.agencies)}
    long_row = ws.row_dimensions[rows[LONG_NAME]].height
    lines = county_xlsx.text_lines(LONG_NAME, county_xlsx.BREAKDOWN_FIXED_WIDTHS[1])
    assert lines == 2 and long_row >= 2 * county_xlsx.line_height()
    short = next(n for n in rows if county_xlsx.display_width(n) < county_xlsx.BREAKDOWN_FIXED_WIDTHS[1] - 2)
    assert ws.row_dimensions[rows[short]].height in (None, county_xlsx.DEFAULT_ROW_HEIGHT)
    # the column-label row is tall enough for the longest label in one 8-wide column (本年收费金额（单位：万元）)
    bottom = first - 1
    longest = max((c.column for c in spec.CELLS), key=county_xlsx.display_width)
    assert ws.row_dimensions[bottom].height >= county_xlsx.text_lines(longest, county_xlsx.BREAKDOWN_DATA_WIDTH) \
        * county_xlsx.line_height()
    # the official table 三: its longest row label wraps in column C and its row is made taller
    t3 = book[spec.SECTION["三"].sheet]
    label = max((lab for lab in spec.LABELS if lab.sheet == t3.title and lab.role == "row" and not lab.merge_to),
                key=lambda lab: county_xlsx.display_width(lab.text))
    row = spec._split_ref(label.ref)[1] + TOP
    assert county_xlsx.text_lines(label.text, t3.column_dimensions["C"].width) >= 2
    assert t3.row_dimensions[row].height >= 2 * county_xlsx.line_height()


def test_agency_text_never_becomes_a_formula(book):
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
    ws = book[L["sheet_breakdown"]]
    cell = ws.cell(row=county_xlsx.BREAKDOWN_FIRST_ROW + 1, column=2)
    assert cell.value == '=HYPERLINK("http://x","点我")' and cell.data_type == "s"


def test_year_on_year_and_completeness_sheets(book, rollup):
    ws = book[L["sheet_yoy"]]
    head = TOP + 1
    assert ws.cell(row=head, column=1).value == L["item"]
    rows = list(ws.iter_rows(min_row=head + 1, max_row=head + len(rollup.yoy), values_only=True))
    assert [r[0] for r in rows] == [y.label for y in rollup.yoy]
    assert ws.cell(row=head + len(rollup.yoy) + 2, column=1).value == rollup.yoy_scope()
    new = next(r for r in rows if r[0] == "新收申请")
    y = next(y for y in rollup.yoy if y.key == "new")
    assert new[1:4] == (y.current, y.previous, y.change)
    ws = book[L["sheet_completeness"]]
    assert ws.cell(row=head, column=2).value == L["agency"]
    assert ws.max_row == head + len(rollup.completeness.entries)


def test_workbook_is_reproducible(tmp_path, rollup):
    a = county_xlsx.write(rollup, tmp_path / "a")
    b = county_xlsx.write(rollup, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


# ---- printed by LibreOffice -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory, rollup) -> list[str]:
    if pdf.find_soffice() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("soffice is required in CI (install libreoffice-calc-nogui and fonts-noto-cjk)")
        pytest.skip("LibreOffice (soffice) not installed: 全县汇总.xlsx is not printed on this machine")
    tmp = tmp_path_factory.mktemp("print")
    result = pdf.convert([county_xlsx.write(rollup, tmp)], tmp / "pdf")
    assert result.ok, result.message
    return ["".join(p.extract_text().split()) for p in pypdf.PdfReader(result.pdfs[0]).pages]


def test_printed_pages(pages, rollup):
    """Each official table on one page with its labels and totals; 各单位明细 one page per band (the header rows
    and the agency columns on each), a title with county and year and a page number on every page."""
    bands = county_xlsx._bands()
    assert len(pages) == 3 + len(bands) + 3, len(pages)  # 3 tables, the bands, key figures, 同比, 报送情况
    for i, p in enumerate(pages, start=1):
        assert f"{rollup.county}{rollup.year}{spec.REPORT_TITLE_SUFFIX}" in p, i
        assert f"第{i}页，共{len(pages)}页" in p, i
    t3 = pages[1]
    row_labels = [lab.text for lab in spec.LABELS if lab.sheet == spec.SECTION["三"].sheet and lab.role == "row"]
    assert spec.SECTION["三"].heading in t3
    assert all("".join(t.split()) in t3 for t in (row_labels[0], row_labels[-1]))
    for page, band in zip(pages[3:3 + len(bands)], bands):
        assert L["agency"] in page and L["total_row"] in page
        assert all(a.code in page for a in rollup.agencies)  # the repeated agency columns
        assert spec.SECTION[band[0].table].heading in page
        assert "".join(band[0].row.split()) in page and "".join(band[-1].column.split()) in page
