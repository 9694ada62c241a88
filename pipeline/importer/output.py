"""A recognised report → one standard workbook, written through the template (pipeline/template.py) and filled by
the format's defined names, with a sheet “来源” recording the source file, its SHA-256 and where each table, text
and cell was found.

What the report prints goes into the workbook as printed: a total the report shows is written over the template's
formula (so validation compares it with the sum of its parts, as for a returned workbook); a total it does not show
stays the formula. A cell that could not be read holds UNREADABLE_MARK with a note — the reader reports it as text in
a number cell (CELL_TEXT, 错误), never as 0. A blank cell of a recognised table is written 0 and the 来源 sheet says
it was blank.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font

from .. import ooxml, spec, template
from ..workspace import Agency
from .recognise import BLANK, SPLIT, UNREADABLE, Recognised

SOURCE_SHEET = "来源"
#: What an unreadable number cell holds (text: the reader reports it, never reads 0).
UNREADABLE_MARK = "无法识别"
SOURCE_HEADER = ("项目", "内容", "位置", "说明")
STATUS_LABEL = {"read": "已读取", BLANK: "原文空白，按0计", SPLIT: "数字连写，已拆分", UNREADABLE: "无法识别"}
AUTHOR = "nianbao 导入"


def _number(text: str, kind: str) -> int | Decimal | None:
    try:
        d = Decimal(str(text).strip())
    except Exception:  # noqa: BLE001 - not a number: the field is left empty
        return None
    if kind == "count":
        return int(d) if d == d.to_integral_value() and d >= 0 else None
    return d


def field_values(rec: Recognised, agency: Agency | None) -> dict[str, object]:
    """The fields to write (TXT_, FEE_, INFO_) by defined name; a roster agency's own fields are the template's."""
    out: dict[str, object] = {}
    locked = {f.name for f in spec.FIELDS if f.prefilled} if agency else set()
    for name, value in rec.texts.items():
        f = spec.FIELD.get(name)
        if f is None or name in locked or value in ("", None):
            continue
        if f.kind in ("count", "money"):
            v = _number(value, f.kind)
            if v is not None:
                out[name] = v
        else:
            out[name] = ooxml.sanitise(value) if f.kind == "text" else str(value)
    if agency is None and rec.agency:
        out["INFO_agency_name"] = rec.agency
    return out


def build(rec: Recognised, year: int, *, source: str, sha256: str, kind: str, verdict: str,
          agency: Agency | None = None, match_note: str = ""):
    """The workbook (openpyxl) of one recognised report."""
    wb = template.build_workbook(year, agency)
    template.fill(wb, {n: v for n, v in field_values(rec, agency).items()})
    for c in spec.CELLS:
        res = rec.cells.get(c.name)
        if res is None:
            continue
        cell = wb[c.sheet][c.ref]
        if res.status == UNREADABLE:
            if c.computed:
                continue  # the formula stays: it sums what could be read, the reader recomputes it
            cell.value = UNREADABLE_MARK
            cell.data_type = "s"
            note = f"导入时无法从原文读取（{res.note or '无法识别'}）。请对照原文填写。"
            cell.comment = Comment(note + (f"位置：{res.where}" if res.where else ""), AUTHOR, width=300, height=90)
            continue
        if c.computed:
            cell.value = res.value  # as printed, over the formula: validation compares it with its parts
        else:
            template.fill(wb, {c.name: res.value})
    _source_sheet(wb, rec, source=source, sha256=sha256, kind=kind, verdict=verdict, year=year, agency=agency,
                  match_note=match_note)
    return wb


def _source_sheet(wb, rec: Recognised, *, source: str, sha256: str, kind: str, verdict: str, year: int,
                  agency: Agency | None, match_note: str) -> None:
    ws = wb.create_sheet(SOURCE_SHEET)
    ws.append(SOURCE_HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    rows: list[tuple[str, str, str, str]] = [
        ("来源文件", source, "", ""),
        ("SHA-256", sha256, "", ""),
        ("文件类型", kind, "", ""),
        ("导入结论", verdict, "", ""),
        ("报告标题", rec.title, "", ""),
        (spec.FIELD["INFO_report_year"].label, str(year), "", "" if rec.year == year else "原文未写明年度"
         if rec.year is None else f"原文为{rec.year}年度"),
        (spec.FIELD["INFO_agency_name"].label, rec.agency, "", match_note),
    ]
    if agency is not None:
        rows.append((spec.FIELD["INFO_agency_code"].label, agency.code, "", "单位名册"))
    for t in ("二", "三", "四"):
        found = rec.tables.get(t)
        rows.append((f"表{t}", "已识别" if found else "未找到", found.where if found else "",
                     found.note if found else "该表各单元格无法识别"))
    for s in spec.SECTIONS:
        found = rec.sections.get(s.number)
        rows.append((s.heading, "已找到" if found else "未找到", found.where if found else "", ""))
    for f in spec.FIELDS:
        value = rec.texts.get(f.name)
        if value not in (None, ""):
            where = rec.text_where.get(f.section or "")
            rows.append((f.label, str(value) if f.kind != "text" else f"{len(str(value))}字",
                         where.where if where else "", ""))
    for n in rec.notes:
        rows.append(("说明", n, "", ""))
    rows.append(("", "", "", ""))
    rows.append(("单元格", "数值", "位置", "说明"))
    for c in spec.CELLS:
        res = rec.cells.get(c.name)
        if res is None:
            continue
        label = f"表{c.table} {c.row}·{c.column}"
        value = UNREADABLE_MARK if res.value is None else format(res.value, "f") if isinstance(
            res.value, Decimal) else str(res.value)
        note = res.note or STATUS_LABEL.get(res.status, "")
        rows.append((f"{c.name} {label}", value, res.where, note))
    for r in rows:
        ws.append([ooxml.sanitise(x) for x in r])
    for col, width in zip("ABCD", (46, 40, 30, 50)):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def save(wb, path: Path) -> Path:
    return ooxml.save_workbook(wb, path)
