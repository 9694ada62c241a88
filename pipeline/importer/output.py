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

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font

from .. import ooxml, spec, template
from ..workspace import Agency
from .recognise import BLANK, SPLIT, UNREADABLE, Number, Recognised

SOURCE_SHEET = "来源"
#: What an unreadable number cell holds (text: the reader reports it, never reads 0).
UNREADABLE_MARK = "无法识别"
SOURCE_HEADER = ("项目", "内容", "位置", "说明")
STATUS_LABEL = {"read": "已读取", BLANK: "原文空白，按0计", SPLIT: "数字连写，已拆分", UNREADABLE: "无法识别"}
AUTHOR = "nianbao 导入"
#: (width, height) of an unreadable cell's note
COMMENT_SIZE = (300, 90)


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
            out[name] = cell_text(value)
    if agency is None and rec.agency:
        out["INFO_agency_name"] = cell_text(rec.agency)
    return out


_XSTRING = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")


def cell_text(value: object) -> str:
    """Text as a cell holds it: safe for the XML (ooxml.sanitise) and with a literal ``_xHHHH_`` escaped as
    ``_x005F_xHHHH_`` (ST_Xstring), so that a reader does not take it for an escaped character."""
    return _XSTRING.sub("_x005F_", ooxml.sanitise(value))


@dataclass(frozen=True)
class Plan:
    """What one report's workbook holds beyond the template: what both writers (``build``, openpyxl, and
    fastxlsx, the template's XML) write, so that they cannot differ in what they write."""

    year: int
    agency: Agency | None
    fields: dict[str, object]  # TXT_/FEE_/INFO_ fields by defined name (template.fill)
    inputs: dict[str, Number]  # input cells by defined name (template.fill)
    printed: dict[str, Number]  # totals the report prints, written over their formula
    unreadable: dict[str, str]  # input cells that hold UNREADABLE_MARK → their note
    source_rows: tuple[tuple[str, str, str, str], ...]  # the 来源 sheet's rows under SOURCE_HEADER (sanitised)


def plan(rec: Recognised, year: int, *, source: str, sha256: str, kind: str, verdict: str,
         agency: Agency | None = None, match_note: str = "") -> Plan:
    """The plan of one recognised report's workbook."""
    inputs: dict[str, Number] = {}
    printed: dict[str, Number] = {}
    unreadable: dict[str, str] = {}
    for c in spec.CELLS:
        res = rec.cells.get(c.name)
        if res is None:
            continue
        if res.status == UNREADABLE:
            if not c.computed:  # a total's formula stays: it sums what could be read, the reader recomputes it
                note = f"导入时无法从原文读取（{res.note or '无法识别'}）。请对照原文填写。"
                unreadable[c.name] = note + (f"位置：{res.where}" if res.where else "")
        elif c.computed:
            printed[c.name] = res.value  # as printed, over the formula: validation compares it with its parts
        else:
            inputs[c.name] = res.value
    rows = source_rows(rec, source=source, sha256=sha256, kind=kind, verdict=verdict, year=year, agency=agency,
                       match_note=match_note)
    return Plan(int(year), agency, field_values(rec, agency), inputs, printed, unreadable, rows)


def build(rec: Recognised, year: int, *, source: str, sha256: str, kind: str, verdict: str,
          agency: Agency | None = None, match_note: str = ""):
    """The workbook (openpyxl) of one recognised report."""
    return build_plan(plan(rec, year, source=source, sha256=sha256, kind=kind, verdict=verdict, agency=agency,
                           match_note=match_note))


def build_plan(p: Plan):
    """The workbook (openpyxl) of a plan: the template (template.build_workbook), filled by defined name."""
    wb = template.build_workbook(p.year, p.agency)
    template.fill(wb, p.fields)
    template.fill(wb, p.inputs)
    for name, value in p.printed.items():
        c = spec.CELL[name]
        wb[c.sheet][c.ref].value = value
    for name, note in p.unreadable.items():
        c = spec.CELL[name]
        cell = wb[c.sheet][c.ref]
        cell.value = UNREADABLE_MARK
        cell.data_type = "s"
        cell.comment = Comment(note, AUTHOR, width=COMMENT_SIZE[0], height=COMMENT_SIZE[1])
    source_sheet(wb, p.source_rows)
    return wb


def source_rows(rec: Recognised, *, source: str, sha256: str, kind: str, verdict: str, year: int,
                agency: Agency | None, match_note: str) -> tuple[tuple[str, str, str, str], ...]:
    """The 来源 sheet's rows (under SOURCE_HEADER): the source, then where each table, section, text and cell was
    found."""
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
    return tuple(tuple(cell_text(x) for x in r) for r in rows)


def source_sheet(wb, rows) -> None:
    """Add the 来源 sheet (openpyxl): SOURCE_HEADER in bold, then ``rows``, wrapped, printable."""
    ws = wb.create_sheet(SOURCE_SHEET)
    ws.append(SOURCE_HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append(list(r))
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


def workbook_bytes(p: Plan) -> bytes:
    """The .xlsx bytes of a plan, as ooxml.save_workbook would write ``build_plan(p)`` (fixed times and zip)."""
    import datetime as _dt
    import io

    wb = build_plan(p)
    fixed = _dt.datetime(*ooxml.FIXED_ZIP_TIME)
    wb.properties.created = wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return ooxml.normalise_zip(buf.getvalue())


def write(rec: Recognised, year: int, path: Path, *, source: str, sha256: str, kind: str, verdict: str,
          agency: Agency | None = None, match_note: str = "") -> Path:
    """Write one recognised report's workbook to ``path`` (atomically): the fast writer (fastxlsx), which falls
    back to ``build`` whenever it cannot write what ``build`` writes."""
    from . import fastxlsx

    p = plan(rec, year, source=source, sha256=sha256, kind=kind, verdict=verdict, agency=agency,
             match_note=match_note)
    return ooxml.atomic_write_bytes(path, fastxlsx.workbook_bytes(p))


def save(wb, path: Path) -> Path:
    return ooxml.save_workbook(wb, path)
