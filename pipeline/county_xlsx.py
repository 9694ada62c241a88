"""全县汇总.xlsx — the county tables in the official layout, the per-agency breakdown and the year-on-year table,
for the office's own checking, and ready to print.

Written with XlsxWriter (the breakdown is one row per agency × every cell of the three tables: openpyxl took
~2.7 s and ~130 MB for 1,000 agencies, XlsxWriter ~0.8 s and a fraction of the memory). Every number is a
value computed in Python (no formulas); agency-supplied text is always stored as a string, never as a formula.

Every sheet opens with a title row naming the county and the year, prints on A4 (orientation by the sheet's
shape), repeats its title and header rows on every page and numbers its pages. The official tables sit one row
lower than in the agency workbook (under the title row) and print on one page each. 各单位明细 has Chinese
headers in merged rows (表 / 行 (with its groups) / 列) and no row of defined names (nothing reads the workbook
back; `nianbao spec --json` lists the names); it prints in bands of whole table rows, each band one page wide,
the agency columns repeated on every page. Row heights are computed from the text and the column widths
(XlsxWriter, like openpyxl, does not size rows; a CJK character counts two columns).
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import re
import unicodedata
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from . import ooxml, spec
from .model import Rollup
from .ooxml import sanitise

FILENAME = "全县汇总.xlsx"
L = spec.SUMMARY_LABELS
FONT_NAME = "宋体"
FONT_SIZE = 11
_BASE = {"border": 1, "text_wrap": True, "valign": "vcenter", "align": "center", "font_name": FONT_NAME,
         "font_size": FONT_SIZE}
_HEADER = {"bold": True, "bg_color": "#DDEBF7", "pattern": 1}
_TITLE = {"bold": True, "font_size": 14, "border": 0, "align": "center"}
_SUBTITLE = {"bold": True, "font_size": 12, "border": 0, "align": "center"}
MONEY_FORMAT = "0.00####"
RATE_FORMAT = "0.0%"
# characters XML 1.0 cannot hold (XlsxWriter would write them as _xHHHH_ escapes, shown literally by Excel)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

#: Rows above every sheet's content: the title (county, year, sheet).
TITLE_ROWS = 1
#: 各单位明细: header rows under the title — 表, two levels of row groups, 行, 列.
BREAKDOWN_HEADER_ROWS = 5
BREAKDOWN_FIRST_ROW = TITLE_ROWS + BREAKDOWN_HEADER_ROWS + 1
BREAKDOWN_FIXED_WIDTHS = (9, 28, 13)  # 单位代码, 单位名称, 单位类别
BREAKDOWN_DATA_WIDTH = 8
#: 各单位明细 prints at this scale: the agency columns and the widest band (table 二 or 行政诉讼, 10 columns)
#: on one landscape A4 page width (fit-to-width would ignore the bands' page breaks).
BREAKDOWN_PRINT_SCALE = 80
PAPER_A4 = 9
DEFAULT_ROW_HEIGHT = 15.0
PAGE_FOOTER = "&C第 &P 页，共 &N 页"


def text(value: object) -> str:
    return _ILLEGAL.sub("", sanitise(value))


def display_width(s: str) -> int:
    """Width in half-width columns: a CJK (wide or full-width) character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def text_lines(s: str, width: float, size: float = FONT_SIZE) -> int:
    """How many lines ``s`` takes wrapped in a cell ``width`` characters wide at ``size`` points."""
    usable = max(1.0, width - 0.7)  # cell padding
    return sum(max(1, math.ceil(display_width(part) * size / FONT_SIZE / usable)) for part in s.split("\n"))


def line_height(size: float = FONT_SIZE) -> float:
    return round(size * 1.35, 2)


class _Sheet:
    """One worksheet addressed 1-based like the spec (A1 = row 1, column 1), cells styled by kind; remembers
    each text and its span, so that row heights can be set from them (``fit_rows``)."""

    def __init__(self, wb: xlsxwriter.Workbook, name: str, formats: dict):
        self.ws = wb.add_worksheet(name)
        self.name = name
        self._wb = wb
        self._formats = formats
        self._widths: dict[int, float] = {}
        self._texts: list[tuple[int, int, int, int, str, float]] = []  # r1, c1, r2, c2, text, font size
        self.max_col = 1

    def fmt(self, *, money: bool = False, header: bool = False, left: bool = False, rate: bool = False,
            kind: str = ""):
        key = (money, header, left, rate, kind)
        f = self._formats.get(key)
        if f is None:
            props = dict(_BASE, align="left" if left else "center")
            if header:
                props.update(_HEADER)
            if kind == "title":
                props.update(_TITLE)
            elif kind == "subtitle":
                props.update(_SUBTITLE)
            elif kind == "note":
                props.update(border=0, align="left", text_wrap=True)
            if money:
                props["num_format"] = MONEY_FORMAT
            if rate:
                props["num_format"] = RATE_FORMAT
            f = self._formats[key] = self._wb.add_format(props)
        return f

    def _remember(self, r1: int, c1: int, r2: int, c2: int, value: object, size: float) -> None:
        self.max_col = max(self.max_col, c2)
        if isinstance(value, str) and value:
            self._texts.append((r1, c1, r2, c2, value, size))

    def put(self, row: int, col: int, value: object, *, header: bool = False, left: bool = False,
            rate: bool = False, kind: str = "") -> None:
        """Strings are stored as text (never a formula), numbers as numbers (万元 exactly as written)."""
        r, c = row - 1, col - 1
        if isinstance(value, str):
            value = text(value)
            self.ws.write_string(r, c, value, self.fmt(header=header, left=left, kind=kind))
        elif value is None:
            self.ws.write_blank(r, c, None, self.fmt(header=header, left=left, kind=kind))
        else:
            money = isinstance(value, Decimal)
            self.ws.write_number(r, c, value, self.fmt(money=money, header=header, left=left, rate=rate))
        self._remember(row, col, row, col, value, _size(kind))

    def merge(self, row: int, col: int, row2: int, col2: int, value: object, *, header: bool = False,
              left: bool = False, kind: str = "") -> None:
        """A merged range holding ``value``, every cell of it bordered (one cell: written as it is)."""
        if (row, col) == (row2, col2):
            self.put(row, col, value, header=header, left=left, kind=kind)
            return
        if isinstance(value, str):
            value, f = text(value), self.fmt(header=header, left=left, kind=kind)
        else:
            f = self.fmt(money=isinstance(value, Decimal), header=header, left=left)
        self.ws.merge_range(row - 1, col - 1, row2 - 1, col2 - 1, value, f)
        self._remember(row, col, row2, col2, value, _size(kind))

    def widths(self, widths, first: int = 1) -> None:
        for j, w in enumerate(widths, start=first):
            self.width(j, j, w)

    def width(self, col: int, col2: int, w: float) -> None:
        self.ws.set_column(col - 1, col2 - 1, w)
        for j in range(col, col2 + 1):
            self._widths[j] = w

    def title(self, title: str, last_col: int | None = None, *, kind: str = "title") -> None:
        """The title row (row 1) across the sheet's columns (``kind`` subtitle: in a smaller size)."""
        self.merge(1, 1, TITLE_ROWS, last_col or self.max_col, title, kind=kind)

    def fit_rows(self) -> None:
        """Set every row holding wrapped text tall enough for it: one-row cells first, then merged ranges spread
        over their rows."""
        heights: dict[int, float] = {}
        spans = []
        for r1, c1, r2, c2, s, size in self._texts:
            width = sum(self._widths.get(j, 8.43) for j in range(c1, c2 + 1))
            lines = text_lines(s, width, size)
            need = lines * line_height(size) + (2 if lines > 1 else 0)
            if r1 == r2:
                heights[r1] = max(heights.get(r1, DEFAULT_ROW_HEIGHT), need)
            else:
                spans.append((r1, r2, need))
        for r1, r2, need in spans:
            rows = range(r1, r2 + 1)
            have = sum(heights.get(r, DEFAULT_ROW_HEIGHT) for r in rows)
            if have < need:
                extra = (need - have) / len(rows)
                for r in rows:
                    heights[r] = heights.get(r, DEFAULT_ROW_HEIGHT) + extra
        for r, h in sorted(heights.items()):
            if h > DEFAULT_ROW_HEIGHT:
                self.ws.set_row(r - 1, round(h, 1))

    def print_setup(self, *, landscape: bool, header_rows: int, one_page: bool = False,
                    repeat_cols: int = 0, scale: int | None = None) -> None:
        """A4, the orientation given, fitted to one page width (``one_page``: to one page), the title and header
        rows (and ``repeat_cols`` first columns) on every page, page numbers in the footer."""
        ws = self.ws
        ws.set_paper(PAPER_A4)
        if landscape:
            ws.set_landscape()
        else:
            ws.set_portrait()
        ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.7)
        ws.center_horizontally()
        if scale:
            ws.set_print_scale(scale)
        else:
            ws.fit_to_pages(1, 1 if one_page else 0)
        ws.repeat_rows(0, TITLE_ROWS + header_rows - 1)
        if repeat_cols:
            ws.repeat_columns(0, repeat_cols - 1)
        ws.set_footer(PAGE_FOOTER)


def _size(kind: str) -> float:
    return {"title": _TITLE["font_size"], "subtitle": _SUBTITLE["font_size"]}.get(kind, FONT_SIZE)


def _county_title(r: Rollup, subject: str) -> str:
    """Two lines: 示例县2024年政府信息公开工作年度报告 / what the sheet holds (全县汇总·各单位明细)."""
    return f"{r.county}{r.year}{spec.REPORT_TITLE_SUFFIX}\n{subject}"


def _subject(label: str) -> str:
    return f"全县汇总·{label}"


def _official_sheet(wb, formats: dict, r: Rollup, table: str, values) -> None:
    """One table of the format with the county totals, at the agency workbook's cells and merges one row lower
    (the title row above)."""
    sheet = spec.SECTION[table].sheet
    ws = _Sheet(wb, sheet, formats)
    ws.widths({"二": (24, 16, 16, 16), "三": (8, 12, 40) + (10,) * 7, "四": (9,) * 15}[table])
    limit = spec.T2_REFERENCE_COL if table == "二" else 10_000
    down = TITLE_ROWS
    last_col, header_end = 1, 1
    for lab in spec.LABELS:
        if lab.sheet != sheet:
            continue
        col, row = spec._split_ref(lab.ref)
        if col >= limit:
            continue
        c1, r1 = spec._split_ref(lab.merge_to) if lab.merge_to else (col, row)
        last_col = max(last_col, c1)
        if lab.role in ("column", "note"):
            header_end = max(header_end, r1)
        kind = "subtitle" if lab.role == "title" else ""
        header, left = lab.role not in ("row", "title"), lab.role == "row"
        ws.merge(row + down, col, r1 + down, c1, lab.text, header=header, left=left, kind=kind)
    for c in spec.table_cells(table):
        col, row = spec._split_ref(c.ref)
        c1, r1 = spec._split_ref(c.merge_to) if c.merge_to else (col, row)
        ws.merge(row + down, col, r1 + down, c1, values[c.name])
    ws.title(_county_title(r, L["sheet_tables"]), last_col)
    ws.fit_rows()
    # table 二 repeats its block headers inside the table: only the title rows repeat
    ws.print_setup(landscape=table != "二", header_rows=header_end if table != "二" else 1, one_page=True)


def _row_levels(c: spec.CellSpec) -> tuple[str, ...]:
    """The row headings of a breakdown column, outermost first: the row's groups, then the row."""
    return c.row_path + (c.row,)


def _bands() -> list[list[spec.CellSpec]]:
    """The breakdown's columns in print bands, each printed one page wide: table 二 whole, table 三 one band per
    row (its applicant columns together), table 四 one band per top group (行政复议, 行政诉讼)."""
    bands: list[list[spec.CellSpec]] = []
    for table in ("二", "三", "四"):
        cells = list(spec.table_cells(table))
        if table == "二":
            bands.append(cells)
            continue
        by: dict[str, list[spec.CellSpec]] = {}
        for c in cells:
            by.setdefault(c.row_key if table == "三" else _row_levels(c)[0], []).append(c)
        bands.extend(by.values())
    assert [c.name for b in bands for c in b] == [c.name for c in spec.CELLS], "bands keep the spec's order"
    return bands


def _breakdown_sheet(wb, formats: dict, r: Rollup) -> None:
    ws = _Sheet(wb, L["sheet_breakdown"], formats)
    fixed = (L["code"], L["agency"], L["category"])
    top = TITLE_ROWS + 1  # first header row
    bottom = TITLE_ROWS + BREAKDOWN_HEADER_ROWS  # last header row (列)
    row_rows = BREAKDOWN_HEADER_ROWS - 2  # rows for the row headings (groups and row)
    ws.widths(BREAKDOWN_FIXED_WIDTHS)
    for j, h in enumerate(fixed, start=1):
        ws.merge(top, j, bottom, j, h, header=True)
    first = len(fixed) + 1
    bands = _bands()
    col = first
    breaks: list[int] = []
    for band in bands:
        if col > first:
            breaks.append(col - 1)  # 0-based index of the band's first column: the page breaks before it
        start = col
        ws.width(start, start + len(band) - 1, BREAKDOWN_DATA_WIDTH)
        # header level 0: the table; 1..row_rows: the row's groups and the row (the last level fills the rows
        # left below it); last: the column. Equal neighbours within a band merge.
        grid: list[list[tuple]] = [[] for _ in range(BREAKDOWN_HEADER_ROWS)]
        for c in band:
            levels = _row_levels(c)
            assert len(levels) <= row_rows, "row groups deeper than the breakdown's header rows"
            grid[0].append(((c.table,), spec.SECTION[c.table].heading, 0))
            for k in range(row_rows):
                if k < len(levels):
                    span = row_rows - len(levels) if k == len(levels) - 1 else 0
                    grid[1 + k].append(((c.table,) + levels[:k + 1], levels[k], span))
                else:
                    grid[1 + k].append(None)  # covered by the level above
            grid[-1].append(((c.table, c.row_key, c.column_key), c.column, 0))
        for level, entries in enumerate(grid):
            j = 0
            while j < len(entries):
                e = entries[j]
                k = j
                while k + 1 < len(entries) and entries[k + 1] is not None and e is not None \
                        and entries[k + 1][0] == e[0]:
                    k += 1
                if e is not None:
                    row = top + level
                    ws.merge(row, start + j, row + e[2], start + k, e[1], header=True)
                j = k + 1
        col += len(band)
    cells = [c for band in bands for c in band]
    row = BREAKDOWN_FIRST_ROW
    for a in r.agencies:
        ws.put(row, 1, a.code, left=True)
        ws.put(row, 2, a.name, left=True)
        ws.put(row, 3, a.category)
        for j, c in enumerate(cells, start=first):
            ws.put(row, j, a.values[c.name])
        row += 1
    ws.put(row, 1, L["total_row"], header=True)
    ws.put(row, 2, f"{len(r.agencies)}个单位", header=True)
    ws.put(row, 3, "", header=True)
    for j, c in enumerate(cells, start=first):
        ws.put(row, j, r.totals[c.name], header=True)
    ws.title(_county_title(r, _subject(L["sheet_breakdown"])), len(fixed), kind="subtitle")
    ws.fit_rows()
    ws.ws.freeze_panes(BREAKDOWN_FIRST_ROW - 1, len(fixed))
    ws.ws.set_v_pagebreaks(breaks)
    ws.print_setup(landscape=True, header_rows=BREAKDOWN_HEADER_ROWS, repeat_cols=len(fixed),
                   scale=BREAKDOWN_PRINT_SCALE)


def _key_sheet(wb, formats: dict, r: Rollup) -> None:
    """Key figures per agency and per category (the annexes of the county summary)."""
    ws = _Sheet(wb, L["annex_breakdown"], formats)
    heads = (L["code"], L["agency"], L["category"]) + tuple(k.label for k in spec.KEY_FIGURES)
    ws.widths((10, 24, 12) + (9,) * len(spec.KEY_FIGURES))
    head = TITLE_ROWS + 1
    for j, h in enumerate(heads, start=1):
        ws.put(head, j, h, header=True)
    row = head + 1
    for a in r.agencies:
        for j, v in enumerate((a.code, a.name, a.category) + tuple(a.key[k.key] for k in spec.KEY_FIGURES), 1):
            ws.put(row, j, v, left=j <= 2)
        row += 1
    for ct in r.by_category:
        vals = (f"{L['annex_categories']}", ct.category, f"{ct.agencies}") + tuple(ct.key[k.key] for k in spec.KEY_FIGURES)
        for j, v in enumerate(vals, 1):
            ws.put(row, j, v, header=True)
        row += 1
    for j, v in enumerate((L["total_row"], "", f"{len(r.agencies)}") + tuple(r.key[k.key] for k in spec.KEY_FIGURES), 1):
        ws.put(row, j, v, header=True)
    ws.title(_county_title(r, _subject(L["annex_breakdown"])))
    ws.fit_rows()
    ws.ws.freeze_panes(head, 3)
    ws.print_setup(landscape=True, header_rows=1)


def _yoy_sheet(wb, formats: dict, r: Rollup) -> None:
    ws = _Sheet(wb, L["sheet_yoy"], formats)
    ws.widths((44, 14, 14, 12, 12))
    head = TITLE_ROWS + 1
    heads = (L["item"], f"{L['current']}（{r.year}）", f"{L['previous']}（{r.year - 1}）", L["change"], L["rate"])
    for j, h in enumerate(heads, start=1):
        ws.put(head, j, h, header=True)
    if not r.yoy:
        ws.merge(head + 1, 1, head + 1, len(heads), f"未找到{r.year - 1}年度数据，未作同比。", left=True,
                 kind="note")
    for i, y in enumerate(r.yoy, start=head + 1):
        ws.put(i, 1, y.label, left=True)
        ws.put(i, 2, y.current)
        ws.put(i, 3, y.previous)
        ws.put(i, 4, y.change)
        ws.put(i, 5, y.rate if y.rate is not None else "—", rate=y.rate is not None)
    if r.yoy:
        ws.merge(head + len(r.yoy) + 2, 1, head + len(r.yoy) + 2, len(heads), sanitise(r.yoy_scope()),
                 kind="note")
    ws.title(_county_title(r, _subject(L["sheet_yoy"])))
    ws.fit_rows()
    ws.ws.freeze_panes(head, 0)
    ws.print_setup(landscape=False, header_rows=1)


def _completeness_sheet(wb, formats: dict, r: Rollup) -> None:
    ws = _Sheet(wb, L["sheet_completeness"], formats)
    ws.widths((12, 32, 14, 14))
    head = TITLE_ROWS + 1
    for j, h in enumerate((L["code"], L["agency"], L["category"], L["status"]), start=1):
        ws.put(head, j, h, header=True)
    for i, e in enumerate(r.completeness.entries, start=head + 1):
        for j, v in enumerate((e.code, e.name, e.category, e.status), start=1):
            ws.put(i, j, v, left=j <= 2)
    ws.title(_county_title(r, _subject(L["sheet_completeness"])))
    ws.fit_rows()
    ws.ws.freeze_panes(head, 0)
    ws.print_setup(landscape=False, header_rows=1)


def build(r: Rollup) -> bytes:
    """The workbook's bytes (document times fixed: the same rollup gives the same file)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                   "strings_to_urls": False,
                                   "default_format_properties": {"font_name": FONT_NAME, "font_size": FONT_SIZE}})
    title = _county_title(r, L["sheet_tables"]).replace("\n", "·")
    wb.set_properties({"created": _dt.datetime(*ooxml.FIXED_ZIP_TIME), "title": title})
    formats: dict = {}
    for table in ("二", "三", "四"):
        _official_sheet(wb, formats, r, table, r.totals)
    _breakdown_sheet(wb, formats, r)
    _key_sheet(wb, formats, r)
    _yoy_sheet(wb, formats, r)
    _completeness_sheet(wb, formats, r)
    wb.close()
    return buf.getvalue()


def write(r: Rollup, out_dir: Path) -> Path:
    """county_workbook(Rollup): write ``<out_dir>/全县汇总.xlsx`` atomically and reproducibly."""
    with spec.using(r.format):
        data = build(r)
    return ooxml.atomic_write_bytes(Path(out_dir) / FILENAME, ooxml.normalise_zip(data))
