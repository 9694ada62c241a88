"""Validation outputs for people and tools: 校验结果.xlsx, 校验结果.json and the 退回修改/ annotated copies.

Agency-supplied text is written to Excel as plain strings, never as formulas (a text starting with "=" stays
text), with characters Excel cannot store removed. Every file is written atomically and reproducibly
(pipeline.ooxml). Input workbooks are never modified: an annotated copy is built from the input's bytes and
saved under the output folder. Everything is written under the format the report was validated against
(``report.format``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from . import findings as F
from . import ooxml, spec
from .read import Figures
from .model import VERDICT_FAIL, VERDICT_MISSING, VERDICT_PASS, VERDICT_WARN, Report

RESULT_XLSX = "校验结果.xlsx"
RESULT_JSON = "校验结果.json"
RETURN_DIR = "退回修改"
RETURN_SHEET = "校验问题"

FILL = {
    "error": PatternFill("solid", start_color="FFFF9999", end_color="FFFF9999"),  # red
    "warning": PatternFill("solid", start_color="FFFFD966", end_color="FFFFD966"),  # amber
}
VERDICT_FILL = {
    VERDICT_PASS: PatternFill("solid", start_color="FFC6EFCE", end_color="FFC6EFCE"),
    VERDICT_WARN: FILL["warning"],
    VERDICT_FAIL: FILL["error"],
    VERDICT_MISSING: FILL["error"],
}
HEADER_FONT = Font(bold=True)
NO_FINDINGS = "未发现问题：所有报表均未发现错误或提示。"
FINDING_COLUMNS = ("单位", "文件", "工作表", "单元格", "级别", "代码", "说明", "应为", "实为")


def write_validation_outputs(report: Report, batch: Figures, out_dir: Path) -> list[Path]:
    """Write 校验结果.xlsx, 校验结果.json and 退回修改/<单位>.xlsx under ``out_dir``; return the paths written."""
    out_dir = Path(out_dir)
    with spec.using(report.format):
        paths = [write_json(report, out_dir / RESULT_JSON), write_xlsx(report, out_dir / RESULT_XLSX)]
        paths += write_returns(report, batch, out_dir / RETURN_DIR)
    return paths


# ---- JSON ------------------------------------------------------------------------------------------------


def findings_json(report: Report) -> list[dict]:
    with spec.using(report.format):
        return [f.as_json() for f in F.sort_findings(report.findings)]


def write_json(report: Report, path: Path) -> Path:
    text = json.dumps(findings_json(report), ensure_ascii=False, indent=2) + "\n"
    return ooxml.atomic_write_bytes(path, text.encode("utf-8"))


# ---- 校验结果.xlsx ---------------------------------------------------------------------------------------


def safe_text(value: object) -> str:
    """Agency text as an Excel-safe string: no control characters Excel rejects."""
    s = "" if value is None else str(value)
    return ILLEGAL_CHARACTERS_RE.sub("", s)


def _put(ws, row: int, col: int, value: object):
    """Write a value; strings are always stored as text, never interpreted as a formula."""
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        cell.value = safe_text(value)
        cell.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
    else:
        cell.value = value
    return cell


def _sheet(wb: Workbook, title: str, header: tuple[str, ...], rows: list[tuple], widths: tuple[int, ...]):
    ws = wb.create_sheet(title)
    for j, h in enumerate(header, start=1):
        _put(ws, 1, j, h).font = HEADER_FONT
    for i, row in enumerate(rows, start=2):
        for j, v in enumerate(row, start=1):
            _put(ws, i, j, v)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(1, len(rows) + 1)}"
    return ws


def write_xlsx(report: Report, path: Path) -> Path:
    with spec.using(report.format):
        return _write_xlsx(report, path)


def _write_xlsx(report: Report, path: Path) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    fs = F.sort_findings(report.findings)
    rows = [
        (
            f.agency_name or f.agency_code,
            f.file,
            f.sheet,
            ",".join(f.cells),
            f.severity_label,
            f.code,
            f.message,
            f.expected,
            f.actual,
        )
        for f in fs
    ]
    ws = _sheet(wb, "问题清单", FINDING_COLUMNS, rows, (24, 34, 16, 14, 6, 22, 80, 14, 14))
    if not fs:  # said, not left as a bare header row
        _put(ws, 2, 1, NO_FINDINGS)
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(FINDING_COLUMNS))
    for i, f in enumerate(fs, start=2):
        ws.cell(row=i, column=5).fill = FILL[f.severity]
        ws.cell(row=i, column=7).alignment = Alignment(wrap_text=True, vertical="top")

    arows = [
        (a.agency_code, a.agency_name, "、".join(a.files), a.verdict, a.errors, a.warnings) for a in report.agencies
    ]
    ws = _sheet(wb, "单位汇总", (spec.FIELD["INFO_agency_code"].label, "单位", "文件", "结论", "错误数", "提示数"), arows, (14, 28, 40, 10, 8, 8))
    for i, a in enumerate(report.agencies, start=2):
        ws.cell(row=i, column=4).fill = VERDICT_FILL[a.verdict]

    counts = Counter(f.code for f in report.findings)
    agencies = defaultdict(set)
    for f in report.findings:
        agencies[f.code].add(f.agency_code or f.file)
    crows = [
        (c.code, F.SEVERITY_LABEL[c.severity], c.group, c.title, counts.get(c.code, 0), len(agencies.get(c.code, ())))
        for c in F.REGISTRY.values()
    ]
    _sheet(wb, "规则汇总", ("代码", "级别", "类别", "说明", "问题数", "涉及单位数"), crows, (22, 6, 10, 40, 8, 10))
    for sheet in wb.worksheets:
        _print_setup(sheet, f"{report.year}年度政府信息公开工作年度报告校验结果·{sheet.title}")
    return ooxml.save_workbook(wb, path)


def _print_setup(ws, title: str) -> None:
    """A4 landscape, fitted to the page width, the header row repeated on every page, a title and page numbers."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    ws.print_options.gridLines = True
    ws.oddHeader.center.text = title
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


# ---- 退回修改/ -----------------------------------------------------------------------------------------


def return_name(agency_name: str, file: str, taken: set[str], year: int | None = None) -> str:
    """A safe, unique file name for an agency's returned copy, saying what it is (the year and 退回修改): no
    separators, '..', leading dots, Windows-reserved names or over-long names (template.sanitise_file_name);
    unique ignoring case."""
    from .template import sanitise_file_name

    marker = f"_{year}年度_{RETURN_DIR}" if year else f"_{RETURN_DIR}"
    stem = Path(file).stem
    base = sanitise_file_name(agency_name or stem, 120)
    name = f"{base}{marker}.xlsx"
    n = 2
    while name.casefold() in taken:
        # the counter is appended after the cut, so that it always makes the name differ
        tail = "" if n == 2 else f"_{n}"
        name = f"{sanitise_file_name(f'{base}_{stem}', 170 - len(tail) - len(marker.encode()))}{tail}{marker}.xlsx"
        n += 1
    taken.add(name.casefold())
    return name


def write_returns(report: Report, batch: Figures, folder: Path) -> list[Path]:
    """One annotated copy per workbook read that has findings: offending cells filled and commented."""
    with spec.using(report.format):
        return _write_returns(report, batch, folder)


def _write_returns(report: Report, batch: Figures, folder: Path) -> list[Path]:
    by_file: dict[str, list[F.Finding]] = defaultdict(list)
    for f in report.findings:
        if f.file:
            by_file[f.file].append(f)
    written: list[Path] = []
    taken: set[str] = set()
    for rec in batch.records:
        fs = by_file.get(rec.file)
        if not fs:
            continue
        target = folder / return_name(rec.agency_name, rec.file, taken, report.year)
        written.append(annotate(rec.path, fs, target))
    return written


def _anchor(ws, ref: str):
    """The cell at ``ref``, or the top-left cell of the merged range holding it."""
    cell = ws[ref]
    if type(cell).__name__ == "MergedCell":
        for rng in ws.merged_cells.ranges:
            if ref in rng:
                return ws.cell(row=rng.min_row, column=rng.min_col)
    return cell


def _editable(ws, ref: str) -> bool:
    """Whether the agency can type into ``ref`` (the sheet unprotected, or the cell unlocked), or has: a total
    of the template holding a number instead of its formula (typed over: the cell to restore)."""
    cell = ws[ref]
    if not ws.protection.sheet or not cell.protection.locked:
        return True
    return (ws.title, ref) in _computed_positions() and cell.data_type != "f" and cell.value is not None


@spec.per_format
def _computed_positions() -> frozenset[tuple[str, str]]:
    return frozenset((c.sheet, c.ref) for c in spec.CELLS if c.computed)


def annotate(src: Path, fs: list[F.Finding], target: Path) -> Path:
    """Copy ``src`` to ``target`` with each finding's cells filled (red 错误 / amber 提示) and commented."""
    wb = load_workbook(src)  # reads the input; it is never written back
    notes: dict[tuple[str, str], list[F.Finding]] = defaultdict(list)
    filled: set[tuple[str, str]] = set()
    ordered = F.sort_findings(fs)
    for f in ordered:
        if f.sheet in wb.sheetnames:
            sheet = wb[f.sheet]
            # the cells the agency can change are marked (a locked total or pre-filled 上年结转 is not: it cannot
            # be typed into); where the finding has none, its first cell carries the note alone
            targets = [_anchor(sheet, ref).coordinate for ref in (f.marks or f.cells)]
            editable = [ref for ref in dict.fromkeys(targets) if _editable(sheet, ref)]
            for ref in editable or targets[:1]:
                notes[(f.sheet, ref)].append(f)
            filled.update((f.sheet, ref) for ref in editable)
    for (sheet, ref), items in notes.items():
        cell = wb[sheet][ref]
        severity = "error" if any(f.severity == "error" for f in items) else "warning"
        if (sheet, ref) in filled:
            cell.fill = FILL[severity]
        text = "\n".join(f"【{f.severity_label}：{F.REGISTRY[f.code].title}】{f.message}" for f in items)  # no internal codes
        if cell.comment is not None and cell.comment.text:  # keep the template's own note below ours
            text = f"{text}\n——\n{cell.comment.text}"
        comment = Comment(safe_text(text)[:30000], "县政务公开办")
        comment.width, comment.height = 420, 220
        cell.comment = comment
    # a first sheet listing every finding, so nothing is missed (file-level ones have no cell)
    ws = wb.create_sheet(RETURN_SHEET, 0)
    _put(ws, 1, 1, "校验发现的问题（红色为错误，必须改正；黄色为提示，请核对）").font = HEADER_FONT
    for j, h in enumerate(("级别", "问题", "工作表", "单元格", "说明"), start=1):
        _put(ws, 2, j, h).font = HEADER_FONT
    for i, f in enumerate(ordered, start=3):
        _put(ws, i, 1, f.severity_label).fill = FILL[f.severity]
        _put(ws, i, 2, F.REGISTRY[f.code].title)
        _put(ws, i, 3, f.sheet)
        _put(ws, i, 4, ",".join(f.cells))
        _put(ws, i, 5, f.message).alignment = Alignment(wrap_text=True, vertical="top")
    for col, width in zip("ABCDE", (6, 28, 16, 12, 100)):
        ws.column_dimensions[col].width = width
    for sheet in wb.worksheets:  # exactly one selected tab, or Excel opens the sheets grouped
        sheet.sheet_view.tabSelected = sheet is ws
    wb.active = 0
    return ooxml.save_workbook(wb, target)
