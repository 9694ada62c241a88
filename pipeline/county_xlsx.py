"""全县汇总.xlsx — the county tables in the official layout, the per-agency breakdown and the year-on-year table,
for the office's own checking.

Every number is a value computed in Python (no formulas: openpyxl writes formulas without cached values);
agency-supplied text is always stored as a string, never as a formula.
"""

from __future__ import annotations

from copy import copy
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from . import ooxml, spec
from .aggregate import CountyRollup
from .render import sanitise

FILENAME = "全县汇总.xlsx"
L = spec.SUMMARY_LABELS
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="center", horizontal="center")
WRAP_LEFT = Alignment(wrap_text=True, vertical="center", horizontal="left")
MONEY_FORMAT = "0.00####"


def text(value: object) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", sanitise(value))


def put(ws, row: int, col: int, value: object, *, header: bool = False, left: bool = False):
    """Write one cell; strings are stored as text (never a formula), numbers as numbers.

    The style of the first cell of each kind is set through openpyxl (which hashes every style object, most of
    the time a county of 1,000 agencies took); later cells of that kind copy its style ids, which gives the same
    workbook byte for byte.
    """
    cell = ws.cell(row=row, column=col)
    money = False
    if isinstance(value, str):
        cell.value = text(value)
        cell.data_type = "s"
    elif isinstance(value, Decimal):
        cell.value = value
        money = True
    else:
        cell.value = value
    styles = ws.parent.__dict__.setdefault("_nianbao_styles", {})
    key = (money, header, left)
    fresh = not cell.has_style
    known = styles.get(key) if fresh else None
    if known is not None:
        cell._style = copy(known)
        return cell
    if money:
        cell.number_format = MONEY_FORMAT
    cell.border = BORDER
    cell.alignment = WRAP_LEFT if left else WRAP
    if header:
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
    if fresh:
        styles[key] = copy(cell._style)
    return cell


def _official_sheet(wb: Workbook, table: str, values) -> None:
    """One table of the format with the county totals, at the same cells and merges as the agency workbook."""
    sheet = spec.SECTION[table].sheet
    ws = wb.create_sheet(sheet)
    limit = spec.T2_REFERENCE_COL if table == "二" else 10_000
    for lab in spec.LABELS:
        if lab.sheet != sheet:
            continue
        col, row = spec._split_ref(lab.ref)
        if col >= limit:
            continue
        put(ws, row, col, lab.text, header=lab.role != "row", left=lab.role == "row")
        if lab.merge_to:
            c1, r1 = spec._split_ref(lab.merge_to)
            for rr in range(row, r1 + 1):
                for cc in range(col, c1 + 1):
                    ws.cell(row=rr, column=cc).border = BORDER
            ws.merge_cells(start_row=row, start_column=col, end_row=r1, end_column=c1)
    for c in spec.table_cells(table):
        col, row = spec._split_ref(c.ref)
        put(ws, row, col, values[c.name])
        if c.merge_to:
            c1, r1 = spec._split_ref(c.merge_to)
            for cc in range(col, c1 + 1):
                ws.cell(row=row, column=cc).border = BORDER
            ws.merge_cells(start_row=row, start_column=col, end_row=r1, end_column=c1)
    widths = {"二": (24, 16, 16, 16), "三": (8, 12, 40) + (10,) * 7, "四": (9,) * 15}[table]
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


def _breakdown_sheet(wb: Workbook, r: CountyRollup) -> None:
    ws = wb.create_sheet(L["sheet_breakdown"])
    fixed = (L["code"], L["agency"], L["category"])
    head_rows = 4  # 表 / 行 / 列 / 定义名称
    for j, h in enumerate(fixed, start=1):
        put(ws, 1, j, h, header=True)
        ws.merge_cells(start_row=1, start_column=j, end_row=head_rows, end_column=j)
    for j, c in enumerate(spec.CELLS, start=len(fixed) + 1):
        put(ws, 1, j, f"{L['table_column']}{c.table}", header=True)
        put(ws, 2, j, "".join(p + "/" for p in c.row_path) + c.row, header=True)
        put(ws, 3, j, c.column, header=True)
        put(ws, 4, j, c.name, header=True)
    row = head_rows + 1
    for a in r.agencies:
        put(ws, row, 1, a.code, left=True)
        put(ws, row, 2, a.name, left=True)
        put(ws, row, 3, a.category)
        for j, c in enumerate(spec.CELLS, start=len(fixed) + 1):
            put(ws, row, j, a.values[c.name])
        row += 1
    put(ws, row, 1, L["total_row"], header=True)
    put(ws, row, 2, f"{len(r.agencies)}", header=True)
    put(ws, row, 3, "", header=True)
    for j, c in enumerate(spec.CELLS, start=len(fixed) + 1):
        put(ws, row, j, r.totals[c.name], header=True)
    ws.column_dimensions["A"].width = 12
    ws.column_dimensions["B"].width = 30
    ws.column_dimensions["C"].width = 12
    for j in range(len(fixed) + 1, len(fixed) + len(spec.CELLS) + 1):
        ws.column_dimensions[get_column_letter(j)].width = 11
    ws.freeze_panes = ws.cell(row=head_rows + 1, column=len(fixed) + 1)


def _key_sheet(wb: Workbook, r: CountyRollup) -> None:
    """Key figures per agency and per category (the annexes of the county summary)."""
    ws = wb.create_sheet(L["annex_breakdown"])
    heads = (L["code"], L["agency"], L["category"]) + tuple(k.label for k in spec.KEY_FIGURES)
    for j, h in enumerate(heads, start=1):
        put(ws, 1, j, h, header=True)
    row = 2
    for a in r.agencies:
        for j, v in enumerate((a.code, a.name, a.category) + tuple(a.key[k.key] for k in spec.KEY_FIGURES), 1):
            put(ws, row, j, v, left=j <= 2)
        row += 1
    for ct in r.by_category:
        vals = (f"{L['annex_categories']}", ct.category, f"{ct.agencies}") + tuple(ct.key[k.key] for k in spec.KEY_FIGURES)
        for j, v in enumerate(vals, 1):
            put(ws, row, j, v, header=True)
        row += 1
    for j, v in enumerate((L["total_row"], "", f"{len(r.agencies)}") + tuple(r.key[k.key] for k in spec.KEY_FIGURES), 1):
        put(ws, row, j, v, header=True)
    ws.column_dimensions["B"].width = 30
    ws.freeze_panes = "D2"


def _yoy_sheet(wb: Workbook, r: CountyRollup) -> None:
    ws = wb.create_sheet(L["sheet_yoy"])
    heads = (L["item"], f"{L['current']}（{r.year}）", f"{L['previous']}（{r.year - 1}）", L["change"], L["rate"])
    for j, h in enumerate(heads, start=1):
        put(ws, 1, j, h, header=True)
    if not r.yoy:
        put(ws, 2, 1, f"未找到{r.year - 1}年度数据，未作同比。", left=True)
    for i, y in enumerate(r.yoy, start=2):
        put(ws, i, 1, y.label, left=True)
        put(ws, i, 2, y.current)
        put(ws, i, 3, y.previous)
        put(ws, i, 4, y.change)
        cell = put(ws, i, 5, y.rate if y.rate is not None else "—")
        if y.rate is not None:
            cell.number_format = "0.0%"
    for j, w in enumerate((44, 14, 14, 12, 12), start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


def _completeness_sheet(wb: Workbook, r: CountyRollup) -> None:
    ws = wb.create_sheet(L["sheet_completeness"])
    for j, h in enumerate((L["code"], L["agency"], L["category"], L["status"]), start=1):
        put(ws, 1, j, h, header=True)
    for i, e in enumerate(r.completeness.entries, start=2):
        for j, v in enumerate((e.code, e.name, e.category, e.status), start=1):
            put(ws, i, j, v, left=j <= 2)
    for j, w in enumerate((12, 32, 14, 14), start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


def build(r: CountyRollup) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    for table in ("二", "三", "四"):
        _official_sheet(wb, table, r.totals)
    _breakdown_sheet(wb, r)
    _key_sheet(wb, r)
    _yoy_sheet(wb, r)
    _completeness_sheet(wb, r)
    return wb


def write(r: CountyRollup, out_dir: Path) -> Path:
    """Write ``<out_dir>/全县汇总.xlsx`` atomically and reproducibly."""
    return ooxml.save_workbook(build(r), Path(out_dir) / FILENAME)
