"""spec → the standard Excel workbook agencies fill (blank) and one pre-filled workbook per roster agency.

Everything positional comes from pipeline/spec.py: labels and merges (spec.LABELS), number cells, their
formulas and merges (spec.CELLS), check cells (spec.CHECKS), fields (spec.FIELDS) and defined names
(spec.all_defined_names()). Only input cells are unlocked; every sheet is protected with SHEET_PASSWORD and the
workbook structure is locked. Saving goes through ooxml.save_workbook, so regenerating gives the same bytes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from copy import copy
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.formatting.rule import CellIsRule
from openpyxl.packaging.custom import IntProperty, StringProperty
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, range_boundaries
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from . import findings, ooxml, spec
from .ooxml import MAX_FILE_NAME_BYTES
from .workspace import Agency, Workspace

#: The blank workbook's file name (in input_templates/).
BLANK_FILE_NAME = "政府信息公开工作年度报告填报表.xlsx"
#: Pre-filled workbooks: <code>_<name>_<year>年度填报表.xlsx (sanitised).
PREFILLED_SUFFIX = "年度填报表.xlsx"
#: Password of every sheet's protection and of the workbook structure (goes in the README).
SHEET_PASSWORD = "nianbao2021"
AUTHOR = "nianbao"

# ---- look ------------------------------------------------------------------------------------------------
# One colour per kind of cell, used everywhere and explained by the legend on 填报说明 (LEGEND).
FONT_NAME = "宋体"
FONT_SIZE = 11
INPUT_FILL = PatternFill("solid", fgColor="FFFFF2CC")  # light yellow: a number to type (件数, 金额)
TEXT_INPUT_FILL = PatternFill("solid", fgColor="FFE4DFEC")  # lavender: text to type or choose (文字, 选项, 日期)
LOCKED_FILL = PatternFill("solid", fgColor="FFE7E6E6")  # grey: computed, pre-filled or fixed
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")  # pale blue: labels
CHECK_FAIL_FILL = PatternFill("solid", fgColor="FFFF0000")
CHECK_OK_FILL = PatternFill("solid", fgColor="FFC6EFCE")
CHECK_FAIL_FONT = "FFFFFFFF"
_THIN = Side(style="thin", color="FF000000")
BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
COUNT_FORMAT = "0"
UNLOCKED = Protection(locked=False)
LOCKED = Protection(locked=True)
MONEY_FORMAT = "0.00##"
YUAN_FORMAT = "0.00"
TEXT_FORMAT = "@"
DATE_FORMAT = "yyyy-mm-dd"
#: The workbook's cell styles (Excel: 开始 → 单元格样式): what to type where, as named styles.
NUMBER_STYLE = "数字输入"
TEXT_STYLE = "文字输入"
LOCKED_STYLE = "锁定"
#: Field kinds typed as numbers (the number style); every other kind is typed or chosen as text.
NUMBER_KINDS = frozenset({"count", "money"})
HINT_FONT = Font(name=FONT_NAME, size=FONT_SIZE, color="FF000000")  # guidance: as readable as the inputs


def _legend() -> tuple[tuple[PatternFill, str], ...]:
    """(fill, what it means) — the legend of 填报说明, in the fills the sheets use."""
    return (
        (INPUT_FILL, f"浅黄色（样式“{NUMBER_STYLE}”）：数字输入——件数、金额，只填不小于0的数字，没有发生的填0。"),
        (TEXT_INPUT_FILL, f"浅紫色（样式“{TEXT_STYLE}”）：文字输入——文字、日期直接输入，选项从下拉列表中选择。"),
        (LOCKED_FILL, f"灰色（样式“{LOCKED_STYLE}”）：自动计算、预填或固定内容——已锁定，不需要填写。"),
        (HEADER_FILL, "浅蓝色：表格标题和项目名称——固定内容，请勿修改。"),
        (CHECK_OK_FILL, f"“{spec.CHECK_LABEL}”显示{spec.CHECK_OK}或“{spec.CHECK_SUMMARY_OK}”（绿色）：通过。"),
        (CHECK_FAIL_FILL, f"显示{spec.CHECK_FAIL}或“{spec.CHECK_SUMMARY_FAIL}”（红色）：有误，请核对修改后再报送。"),
    )

OFFICE = "县政务公开办"
PREFILLED_NOTE = f"本项由{OFFICE}根据单位名册预填并锁定。如有错误，请联系{OFFICE}更正，请勿自行修改。"

_COUNT_ERROR = "请输入不小于0的整数（件数）。不能填写文字、小数或负数；没有发生的填0。"
_COUNT_PROMPT = "填写不小于0的整数；没有发生的填0（空白按0处理）。"


def _money_texts() -> tuple[str, str, str]:
    """(error, prompt title, prompt) of the money cells' data validation, in the format's money unit."""
    unit = next(c.unit for c in spec.CELLS if c.kind == "money")
    return (f"请输入不小于0的金额（单位：{unit}），最多保留{spec.MONEY_MAX_DECIMALS}位小数。不能填写文字或负数。",
            f"金额（{unit}）", f"单位：{unit}，最多保留{spec.MONEY_MAX_DECIMALS}位小数；没有的填0。")


_YUAN_ERROR = "请输入不小于0的金额（单位：元）。不能填写文字或负数。"
_YUAN_PROMPT = "单位：元；不涉及的可留空。"


def _named_styles(wb: Workbook) -> None:
    """The three cell styles of the workbook: number input, text input, locked (each bordered)."""
    font = Font(name=FONT_NAME, size=FONT_SIZE)
    for name, fill, align, protection, number_format in (
        (NUMBER_STYLE, INPUT_FILL, Alignment(horizontal="center", vertical="center", wrap_text=True), UNLOCKED,
         COUNT_FORMAT),
        (TEXT_STYLE, TEXT_INPUT_FILL, Alignment(horizontal="left", vertical="center", wrap_text=True), UNLOCKED,
         TEXT_FORMAT),
        (LOCKED_STYLE, LOCKED_FILL, Alignment(horizontal="center", vertical="center", wrap_text=True), LOCKED,
         "General"),
    ):
        wb.add_named_style(NamedStyle(name=name, font=font, fill=fill, border=BORDER, alignment=align,
                                      protection=protection, number_format=number_format))


class _Styler:
    """Small helpers to style a cell consistently."""

    @staticmethod
    def label(cell, *, bold: bool = False, size: int = 10, fill: PatternFill | None = HEADER_FILL,
              horizontal: str = "center") -> None:
        cell.font = Font(name=FONT_NAME, size=size, bold=bold)
        cell.alignment = Alignment(horizontal=horizontal, vertical="center", wrap_text=True)
        if fill is not None:
            cell.fill = fill

    @staticmethod
    def number_input(cell, kind: str) -> None:
        """A number to type: 件数 (whole), the table's money (万元) or a fee amount (元)."""
        cell.style = NUMBER_STYLE
        cell.number_format = {"money": MONEY_FORMAT, "yuan": YUAN_FORMAT}.get(kind, COUNT_FORMAT)

    @staticmethod
    def text_input(cell, kind: str) -> None:
        """Text to type or choose: 文字 (top-aligned, long), a choice, a date."""
        cell.style = TEXT_STYLE
        cell.number_format = {"date": DATE_FORMAT, "year": COUNT_FORMAT}.get(kind, TEXT_FORMAT)
        if kind == "text":
            cell.alignment = Alignment(horizontal="left", vertical="top", wrap_text=True)

    @staticmethod
    def locked(cell, number_format: str | None = None) -> None:
        """Computed, pre-filled or fixed: the locked style, keeping the cell's font and alignment."""
        font, alignment, fmt = copy(cell.font), copy(cell.alignment), cell.number_format
        cell.style = LOCKED_STYLE
        cell.font, cell.alignment = font, alignment
        cell.number_format = number_format or fmt


# =========================================================================================================
# Public API


def build_workbook(
    year: int,
    agency: Agency | None = None,
    previous: Mapping[str, int | Decimal] | None = None,
    fmt: spec.Format | None = None,
) -> Workbook:
    """The blank template (agency None) or an agency's pre-filled workbook for ``year``, in format ``fmt`` (the
    current one when None: 2021).

    ``previous``: the agency's last-year values by defined name; its ``T3_carried_over_*`` fill this year's
    ``T3_carried_in_*`` (locked) and its ``T2_*_in_force`` are shown in the reference cells beside table 二.
    """
    with spec.using(fmt):
        return _build_workbook(int(year), agency, previous)


def _build_workbook(year: int, agency: Agency | None, previous: Mapping[str, int | Decimal] | None) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    _named_styles(wb)
    for name in spec.SHEETS:
        wb.create_sheet(name)
    _guide_sheet(wb[spec.SHEET_GUIDE], year)
    _field_sheet(wb, spec.SHEET_INFO, spec.SHEET_INFO)
    for section in spec.SECTIONS:
        if spec.fields(sheet=section.sheet):
            _field_sheet(wb, section.sheet, section.heading + section.note)
    _table_labels(wb)
    _table_cells(wb)
    _checks(wb)
    _t2_reference(wb[spec.T2_SHEET])
    _number_validations(wb)
    _print_setup(wb)

    _set(wb, "INFO_report_year", year)
    _set(wb, "META_format_version", spec.FORMAT_VERSION)
    for name in ("INFO_report_year", "META_format_version"):
        _lock(wb, name)

    if agency is not None:
        _prefill_agency(wb, agency)
    if previous:
        _prefill_previous(wb, year, previous)

    _names(wb)
    _properties(wb, year, agency)
    _protect(wb)
    wb.active = 0
    return wb


def fill(wb: Workbook, values: Mapping[str, object], fmt: spec.Format | None = None) -> None:
    """Set input cells and fields by defined name (of format ``fmt``, the current one when None). Text is stored
    as text, never as a formula.

    Raises ValueError for unknown names and for computed cells (totals), which are formulas.
    """
    with spec.using(fmt):
        _fill(wb, values)


def _fill(wb: Workbook, values: Mapping[str, object]) -> None:
    known = {c.name for c in spec.INPUT_CELLS} | {f.name for f in spec.FIELDS}
    bad_computed = sorted(n for n in values if n in spec.CELL and spec.CELL[n].computed)
    if bad_computed:
        raise ValueError(f"计算单元格不能填写（由公式自动计算）：{', '.join(bad_computed)}")
    unknown = sorted(str(n) for n in values if n not in known)
    if unknown:
        raise ValueError(f"模板中没有这些输入单元格或字段：{', '.join(unknown)}")
    bad_text = sorted(n for n, v in values.items() if isinstance(v, str) and ILLEGAL_CHARACTERS_RE.search(v))
    if bad_text:  # checked before anything is written
        raise ValueError(f"文字中含有工作表不能保存的控制字符：{', '.join(bad_text)}")
    for name, value in values.items():
        _set(wb, name, value)


def write_blank(out_dir: Path, year: int, fmt: spec.Format | None = None) -> Path:
    """Write the blank workbook to ``out_dir/BLANK_FILE_NAME``."""
    return ooxml.save_workbook(build_workbook(year, fmt=fmt), Path(out_dir) / BLANK_FILE_NAME)


def write_prefilled(
    ws: Workspace,
    year: int,
    out_dir: Path,
    previous: Mapping[str, Mapping[str, int | Decimal]] | None = None,
    fmt: spec.Format | None = None,
) -> list[Path]:
    """One pre-filled workbook per roster agency in ``out_dir``; ``previous`` maps agency code → last-year values."""
    out_dir = Path(out_dir)
    previous = previous or {}
    paths: list[Path] = []
    used: set[str] = set()
    for agency in ws.agencies:
        name = prefilled_file_name(agency, year)
        stem, n = name[: -len(".xlsx")], 2
        while name.casefold() in used:  # two codes that sanitise alike
            name = f"{stem}_{n}.xlsx"
            n += 1
        used.add(name.casefold())
        path = _inside(out_dir, name)
        wb = build_workbook(year, agency, previous.get(agency.code), fmt)
        paths.append(ooxml.save_workbook(wb, path))
    return paths


def prefilled_file_name(agency: Agency, year: int) -> str:
    """``<code>_<name>_<year>年度填报表.xlsx``, safe on Windows and POSIX; a long name is shortened, the tail kept."""
    tail = f"_{int(year)}{PREFILLED_SUFFIX}"
    head = sanitise_file_name(f"{agency.code}_{agency.name}", MAX_FILE_NAME_BYTES - len(tail.encode("utf-8")))
    return head + tail


_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def sanitise_file_name(name: str, max_bytes: int = MAX_FILE_NAME_BYTES) -> str:
    """A single path component: no separators, no '..', no Windows-reserved characters or names."""
    name = unicodedata.normalize("NFC", str(name))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control/format characters
    name = _BAD_CHARS.sub("_", name)
    name = re.sub(r"\.{2,}", "_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    m = _EXTENSION.search(name)
    stem, ext = (name[: m.start()], m.group()) if m else (name, "")
    stem = stem.strip(" .") or "_"
    if stem.split(".")[0].strip().upper() in _RESERVED:
        stem = "_" + stem
    while len((stem + ext).encode("utf-8")) > max_bytes and len(stem) > 1:
        stem = stem[:-1]
    return stem.rstrip(" .") + ext


def _inside(folder: Path, name: str) -> Path:
    path = folder / name
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"文件名不安全：{name}")
    return path


# =========================================================================================================
# Cells by name


def _position(name: str) -> tuple[str, str]:
    try:
        return spec.all_defined_names()[name]
    except KeyError:
        raise ValueError(f"模板中没有单元格名称 {name}") from None


def _set(wb: Workbook, name: str, value: object, *, clean: bool = False) -> None:
    """Write ``value`` into the named cell: text stays text, numbers keep their exact decimal literal.

    ``clean`` drops characters a worksheet cannot hold (roster values); otherwise they raise ValueError.
    """
    sheet, ref = _position(name)
    cell = wb[sheet][ref]
    if isinstance(value, bool):
        raise TypeError(f"{name}：不支持布尔值")
    if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
        if not clean:
            raise ValueError(f"{name}：文字中含有工作表不能保存的控制字符")
        value = _clean(value)
    if isinstance(value, (Decimal, float)):
        literal = _number_literal(value)
        if literal is None:
            raise ValueError(f"{name}：{value!r} 不是有限数值")
        if re.fullmatch(r"-?\d+", literal):
            value = int(literal)
        elif format(float(value), ".16g") != literal:
            # openpyxl writes numbers with "%.16g" (9116.3612 → 9116.361199999999): keep the exact literal,
            # which the reader parses into a Decimal. A str value with data type "n" is written verbatim.
            cell.value = None
            cell._value = literal
            cell.data_type = "n"
            return
        else:
            value = float(literal)
    cell.value = value
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"  # text that starts with '=' stays text


def _clean(text: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _number_literal(value: Decimal | float) -> str | None:
    """The shortest exact decimal literal of a finite number, without exponent ('12.5', '7')."""
    d = Decimal(repr(value)) if isinstance(value, float) else value
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _lock(wb: Workbook, name: str, note: str | None = None) -> None:
    sheet, ref = _position(name)
    cell = wb[sheet][ref]
    _Styler.locked(cell)
    if note:
        cell.comment = _comment(note)


def _comment(text: str) -> Comment:
    c = Comment(text, AUTHOR)
    c.width, c.height = 260, 90
    return c


# =========================================================================================================
# Sheets


def _guide_sheet(ws: Worksheet, year: int) -> None:
    t3, t4 = spec.SECTION["三"], spec.SECTION["四"]
    money_label = next(c.column for c in spec.CELLS if c.kind == "money")
    checked = [spec.SECTION[next(c.table for c in spec.CELLS if c.sheet == chk.sheet)].sheet for chk in spec.CHECKS]
    lines: list[tuple[str, str] | tuple[str, str, PatternFill]] = [
        ("title", f"{year}{spec.REPORT_TITLE_SUFFIX}{spec.SHEET_GUIDE}"),
        ("head", "一、填报依据"),
        ("text", f"本表按《{spec.FORMAT_TITLE}》（{spec.FORMAT_DOCUMENT}）制作，格式版本 {spec.FORMAT_VERSION}。"),
        ("text", f"报告年度：{year}年，统计期限为{year}年1月1日至12月31日；主动公开数据以{year}年12月31日为准。"),
        ("head", "二、报送时间"),
        ("text", (
            f"请于{year + 1}年{spec.AGENCY_DEADLINE}前将填好的本工作簿报送{OFFICE}，"
            f"并按规定在本单位政府信息公开专栏发布年度报告。"
        )),
        ("head", "三、颜色说明（各工作表一致）"),
        *(("legend", text, fill) for fill, text in _legend()),
        ("head", "四、填写方法"),
        ("text", "1. 只在浅黄色（数字）和浅紫色（文字）的输入单元格中填写，其余单元格已锁定；各项右侧的“说明”列写有填写要求。"),
        ("text", (
            "2. 数字单元格初始为0：没有发生的保持0，空白按0处理。件数填不小于0的整数；"
            f"“{money_label}”最多保留{spec.MONEY_MAX_DECIMALS}位小数。"
        )),
        ("text", (
            f"3. 文字部分（{'、'.join(s.sheet for s in spec.SECTIONS if spec.fields(section=s.number))}）"
            "在“填写内容”列输入，单元格内换行按 Alt+Enter；"
            f"“{spec.SECTION['一'].heading}”原则上不超过{spec.OVERVIEW_MAX_CHARS}字。"
        )),
        ("text", "4. 请勿插入或删除行、列，请勿修改表格标题和项目名称，请勿增删或重命名工作表。"),
        ("text", "5. 填完请以 Excel 工作簿（.xlsx）格式保存报送，不要另存为 .xls、.et、.ods 或 PDF。"),
        ("text", (
            f"6. “{'”“'.join(checked)}”表下方的“{spec.CHECK_LABEL}”随填随算：表{t3.number}逐列核对R1，"
            f"表{t4.number}逐组核对各结果均为不小于0的整数（R5：{spec.MESSAGE_LABELS['t4_total']}由公式自动计算）。"
        )),
        ("text", f"7. 单位名称、代码、类别等预填内容如有错误，请联系{OFFICE}，不要自行修改。"),
        ("head", "五、勾稽关系和校验规则"),
        ("text", (
            f"{OFFICE}收到报表后逐条核对下列规则：标“{findings.SEVERITY_LABEL['error']}”的必须改正，"
            f"否则不能生成年度报告；标“{findings.SEVERITY_LABEL['warning']}”的请核对，确有其事的可不改。"
        )),
    ]
    numbers = sorted(int(i[1:]) for i in spec.RULE_SUMMARIES)
    for n in numbers:
        rid = f"R{n}"
        lines.append(("text", f"{rid}【{_rule_severity(rid)}】{spec.RULE_SUMMARIES[rid]}"))
    gaps = [f"R{n}" for n in range(1, numbers[-1] + 1) if n not in numbers]
    if gaps:
        lines.append(("text", (
            f"注：规则编号与{OFFICE}的校验结果、退回修改意见中的编号一致；{'、'.join(gaps)}空缺不用"
            f"（所依据的规则编号表中没有{'、'.join(gaps)}）。"
        )))

    width = 84
    ws.column_dimensions["A"].width = width
    for i, (kind, text, *fill) in enumerate(lines, start=1):
        cell = ws.cell(row=i, column=1, value=text)
        cell.alignment = Alignment(horizontal="center" if kind == "title" else "left", vertical="center",
                                   wrap_text=True, indent=1 if kind == "legend" else 0)
        size = 16 if kind == "title" else FONT_SIZE
        cell.font = Font(name=FONT_NAME, size=size, bold=kind in ("title", "head"))
        if fill:
            cell.fill = fill[0]
            cell.border = BORDER
            if fill[0] is CHECK_FAIL_FILL:  # as the check cells show it
                cell.font = Font(name=FONT_NAME, size=size, bold=True, color=CHECK_FAIL_FONT)
        # explicit heights: not every spreadsheet grows a wrapped row by itself
        ws.row_dimensions[i].height = 30 if kind == "title" else _lines(text, width - 2) * LINE_HEIGHT + 4
    ws.sheet_view.showGridLines = False


def _rule_severity(rid: str) -> str:
    """错误 / 提示 of the findings that report rule ``rid`` (their titles name it: "R1 …", "…（R4）")."""
    severities = {c.severity for c in findings.REGISTRY.values()
                  if c.title.startswith(f"{rid} ") or f"（{rid}）" in c.title}
    if len(severities) != 1:
        raise AssertionError(f"{rid}: no finding, or findings of two severities")
    return findings.SEVERITY_LABEL[severities.pop()]


def _display_width(text: str) -> int:
    """Width in half-width columns (a CJK character counts two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _field_sheet(wb: Workbook, sheet: str, title: str) -> None:
    ws = wb[sheet]
    fields = spec.fields(sheet=sheet)
    ws.merge_cells("A1:C1")
    _Styler.label(ws["A1"], bold=True, size=14, fill=None)
    ws["A1"] = title
    ws.row_dimensions[1].height = 28
    first = min(coordinate_from_string(f.ref)[1] for f in fields)
    header_row = first - 1
    for j, text in enumerate(spec.FIELD_TABLE_HEADER, start=1):
        c = ws.cell(row=header_row, column=j, value=text)
        _Styler.label(c, bold=True)
        c.border = BORDER
    is_text_sheet = sheet != spec.SHEET_INFO
    widths = {"A": 24, "B": 90 if is_text_sheet else 46, "C": 34}
    for col, w in widths.items():
        ws.column_dimensions[col].width = w
    for f in fields:
        col, row = coordinate_from_string(f.ref)
        label = ws.cell(row=row, column=column_index_from_string(col) - 1, value=f.label)
        _Styler.label(label, horizontal="left")
        label.border = BORDER
        hint = ws.cell(row=row, column=column_index_from_string(col) + 1, value=f.hint or None)
        hint.font = HINT_FONT
        hint.alignment = Alignment(vertical="center", wrap_text=True)
        hint.border = BORDER
        cell = ws[f.ref]
        if f.kind in NUMBER_KINDS:
            _Styler.number_input(cell, "yuan" if f.kind == "money" else f.kind)
        else:
            _Styler.text_input(cell, f.kind)
        if f.choices:
            dv = DataValidation(
                type="list", formula1='"' + ",".join(f.choices) + '"', allow_blank=True,
                showErrorMessage=True, errorTitle="请从列表中选择", error=f"“{f.label}”只能填：{'、'.join(f.choices)}。",
                showInputMessage=True, promptTitle=f.label[:32], prompt=f"请从下拉列表中选择：{'、'.join(f.choices)}",
            )
            dv.add(f.ref)
            ws.add_data_validation(dv)
        # explicit heights (spreadsheets do not grow a row for wrapped text by themselves): the label and the
        # hint wrapped in their columns; a long text gets room to type
        need = max(_lines(f.label, widths["A"], 10), _lines(f.hint, widths["C"])) * LINE_HEIGHT + 6
        ws.row_dimensions[row].height = max(150 if is_text_sheet and f.kind == "text" else 24, need)
    ws.row_dimensions[header_row].height = 22


#: Points per line of 11 pt text (a row's height is lines × this + a margin).
LINE_HEIGHT = 15


def _lines(text: str, width: float, size: float = FONT_SIZE) -> int:
    """Lines ``text`` takes wrapped in a column ``width`` characters wide (a CJK character counts two)."""
    usable = max(1.0, width - 1)
    return sum(max(1, math.ceil(_display_width(part) * size / FONT_SIZE / usable)) for part in text.split("\n"))


def _table_labels(wb: Workbook) -> None:
    for lab in spec.LABELS:
        ws = wb[lab.sheet]
        if lab.merge_to:
            ws.merge_cells(f"{lab.ref}:{lab.merge_to}")
        cell = ws[lab.ref]
        cell.value = lab.text
        if lab.role == "title":
            _Styler.label(cell, bold=True, size=14, fill=None)
            ws.row_dimensions[coordinate_from_string(lab.ref)[1]].height = 28
        elif lab.role == "row":
            _Styler.label(cell, horizontal="left")
        else:
            _Styler.label(cell, bold=lab.role == "block")
        if lab.role != "title":
            _border_range(ws, lab.ref, lab.merge_to)


def _border_range(ws: Worksheet, ref: str, merge_to: str | None) -> None:
    min_col, min_row, max_col, max_row = range_boundaries(f"{ref}:{merge_to or ref}")
    for row in ws.iter_rows(min_row=min_row, max_row=max_row, min_col=min_col, max_col=max_col):
        for c in row:
            c.border = BORDER


def _table_cells(wb: Workbook) -> None:
    for c in spec.CELLS:
        ws = wb[c.sheet]
        if c.merge_to:
            ws.merge_cells(f"{c.ref}:{c.merge_to}")
        cell = ws[c.ref]
        if c.computed:
            cell.value = c.formula()
            cell.font = Font(name=FONT_NAME, size=11, bold=True)
            cell.alignment = Alignment(horizontal="center", vertical="center")
            _Styler.locked(cell, COUNT_FORMAT)
        else:
            cell.value = 0
            _Styler.number_input(cell, c.kind)
        _border_range(ws, c.ref, c.merge_to)
    # widths and heights
    t2 = wb[spec.T2_SHEET]
    t2.column_dimensions["A"].width = 22
    for col in "BCD":
        t2.column_dimensions[col].width = 16
    t2.column_dimensions[get_column_letter(spec.T2_REFERENCE_COL - 1)].width = 3
    t2.column_dimensions[get_column_letter(spec.T2_REFERENCE_COL)].width = 20
    t3 = wb[spec.T3_SHEET]
    t3.column_dimensions["A"].width = 8
    t3.column_dimensions["B"].width = 12
    t3.column_dimensions["C"].width = 44
    last_t3 = max(column_index_from_string(coordinate_from_string(c.ref)[0]) for c in spec.table_cells("三"))
    for col in range(spec.T3_FIRST_DATA_COL, last_t3 + 1):
        t3.column_dimensions[get_column_letter(col)].width = 10
    t3.column_dimensions[get_column_letter(last_t3 + 1)].width = 12
    for c in spec.table_cells("三"):
        if c.column_key == "total":
            row = coordinate_from_string(c.ref)[1]
            label = next((lab for lab in spec.LABELS if lab.sheet == c.sheet and lab.role == "row"
                          and coordinate_from_string(lab.ref)[1] == row and lab.merge_to is None), None)
            t3.row_dimensions[row].height = 30 if label is not None and len(label.text) > 22 else 18
    t3.freeze_panes = t3.cell(row=spec.T3_FIRST_DATA_ROW, column=spec.T3_FIRST_DATA_COL).coordinate
    t4 = wb[spec.T4_SHEET]
    last_t4 = max(column_index_from_string(coordinate_from_string(c.ref)[0]) for c in spec.table_cells("四"))
    for col in range(1, last_t4 + 1):
        t4.column_dimensions[get_column_letter(col)].width = 10
    t4.row_dimensions[spec.T4_DATA_ROW].height = 24


def _checks(wb: Workbook) -> None:
    for chk in spec.CHECKS:
        ws = wb[chk.sheet]
        label = ws[chk.label_ref]
        label.value = spec.CHECK_LABEL
        _Styler.label(label, bold=True)
        label_col, label_row = _col_of(chk.label_ref), _row_of(chk.label_ref)
        label_to = chk.label_to
        first_check_col = min(_col_of(r) for _, r in chk.rule_refs)
        if label_to is None and first_check_col - label_col > 1:  # up to the first check cell
            label_to = ws.cell(row=label_row, column=first_check_col - 1).coordinate
        if label_to:
            ws.merge_cells(f"{chk.label_ref}:{label_to}")
        _border_range(ws, chk.label_ref, label_to)
        rules = [spec.RULE[key] for key, _ in chk.rule_refs]
        spans = chk.spans or (None,) * len(rules)
        for rule, (_, ref), span in zip(rules, chk.rule_refs, spans):
            if span:
                ws.merge_cells(f"{ref}:{span}")
            cell = ws[ref]
            cell.value = check_formula(rule)
            cell.font = Font(name=FONT_NAME, size=12, bold=True)
            cell.alignment = Alignment(horizontal="center", vertical="center")
            _border_range(ws, ref, span)
            cell.comment = _comment(check_note(rule))
            ws.row_dimensions[_row_of(ref)].height = 24
        summary = ws[chk.summary_ref]
        if chk.summary_to:
            ws.merge_cells(f"{chk.summary_ref}:{chk.summary_to}")
        oks = ",".join(f'{ref}="{spec.CHECK_OK}"' for _, ref in chk.rule_refs)
        summary.value = f'=IF(AND({oks}),"{spec.CHECK_SUMMARY_OK}","{spec.CHECK_SUMMARY_FAIL}")'
        summary.font = Font(name=FONT_NAME, size=11, bold=True)
        summary.alignment = Alignment(horizontal="center", vertical="center")
        _border_range(ws, chk.summary_ref, chk.summary_to)
        refs = " ".join(ref for _, ref in chk.rule_refs)
        ws.conditional_formatting.add(refs, CellIsRule(operator="equal", formula=[f'"{spec.CHECK_FAIL}"'],
                                                       fill=CHECK_FAIL_FILL,
                                                       font=Font(color=CHECK_FAIL_FONT, bold=True)))
        ws.conditional_formatting.add(refs, CellIsRule(operator="equal", formula=[f'"{spec.CHECK_OK}"'],
                                                       fill=CHECK_OK_FILL))
        ws.conditional_formatting.add(chk.summary_ref, CellIsRule(
            operator="equal", formula=[f'"{spec.CHECK_SUMMARY_FAIL}"'], fill=CHECK_FAIL_FILL,
            font=Font(color=CHECK_FAIL_FONT, bold=True)))
        ws.conditional_formatting.add(chk.summary_ref, CellIsRule(
            operator="equal", formula=[f'"{spec.CHECK_SUMMARY_OK}"'], fill=CHECK_OK_FILL))
        ws.row_dimensions[label_row].height = 24


def _self_totals(rule: spec.Rule) -> set[str]:
    """The rule's computed cells whose addends are all cells of the rule: the template's formula already makes
    them equal to the rest, so comparing them says nothing (R5: 总计 = SUM of the results)."""
    cells = set(rule.cells)
    return {n for n in rule.cells if spec.CELL[n].computed and set(spec.CELL[n].addends) <= cells}


def check_formula(rule: spec.Rule) -> str:
    """The check cell of an agency rule: ✓ when it holds over what the agency typed.

    A rule between typed cells and totals of other cells (R1: 一+二 = （七）+四) compares its two sides. A rule
    whose total is the formula of its own parts (R5) checks the parts instead: each blank or a whole number
    ≥ 0 — text, a negative number or a decimal (pasted past the data validation) is what makes the formula's
    总计 differ from the results as the agency sees them."""
    ok, fail = f'"{spec.CHECK_OK}"', f'"{spec.CHECK_FAIL}"'
    trivial = _self_totals(rule)
    if not trivial:
        return f"=IF({rule.excel_check()},{ok},{fail})"
    refs = [spec.CELL[n].ref for n in rule.cells if n not in trivial]
    r = spec._compact_range(refs)
    cond = f'AND(COUNT({r})=COUNTA({r}),COUNTIF({r},"<0")=0,SUMPRODUCT(MOD({r},1))=0)'
    return f"=IFERROR(IF({cond},{ok},{fail}),{fail})"


def check_note(rule: spec.Rule) -> str:
    """The check cell's note: the rule by its number and title, and what the cell checks."""
    note = f"{rule.id}：{rule.title}"
    trivial = _self_totals(rule)
    if trivial:
        total = spec.CELL[next(iter(trivial))].column
        parts = "、".join(spec.CELL[n].column for n in rule.cells if n not in trivial)
        note += (f"。{total}由公式自动计算；本格核对{parts}均为不小于0的整数"
                 f"（文字、负数、小数不会计入{total}）。")
    return note


def _col_of(ref: str) -> int:
    return column_index_from_string(coordinate_from_string(ref)[0])


def _row_of(ref: str) -> int:
    return coordinate_from_string(ref)[1]


def _t2_reference(ws: Worksheet) -> None:
    names = spec.all_defined_names()
    refs = [names[n][1] for n in spec.T2_REFERENCE_NAMES.values()]
    header = ws.cell(row=min(_row_of(r) for r in refs) - 1, column=spec.T2_REFERENCE_COL,
                     value=spec.T2_REFERENCE_HEADER)
    _Styler.label(header)
    header.border = BORDER
    for name in spec.T2_REFERENCE_NAMES.values():
        cell = ws[names[name][1]]
        _Styler.locked(cell, COUNT_FORMAT)
        cell.alignment = Alignment(horizontal="center", vertical="center")
        cell.border = BORDER
        cell.font = Font(name=FONT_NAME, size=11, color="FF595959")
    header.comment = _comment(
        f"上年报告的“{spec.CELL[next(iter(spec.T2_REFERENCE_NAMES))].column}”，仅供核对本年数据，不计入本年报告。"
        f"如有错误，请联系{OFFICE}。"
    )
    ws.row_dimensions[header.row].height = 30


def _number_validations(wb: Workbook) -> None:
    by_sheet: dict[tuple[str, str], list[str]] = {}
    for c in spec.INPUT_CELLS:
        by_sheet.setdefault((c.sheet, c.kind), []).append(c.ref)
    for f in spec.FIELDS:
        if f.kind == "count":
            by_sheet.setdefault((f.sheet, "count"), []).append(f.ref)
        elif f.kind == "money":
            by_sheet.setdefault((f.sheet, "yuan"), []).append(f.ref)
    for (sheet, kind), refs in by_sheet.items():
        if kind == "count":
            dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                                errorTitle="件数填写有误", error=_COUNT_ERROR, promptTitle="件数", prompt=_COUNT_PROMPT)
        else:
            error, title, prompt = _money_texts() if kind == "money" else (_YUAN_ERROR, "金额（元）", _YUAN_PROMPT)
            dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                                errorTitle="金额填写有误", error=error, promptTitle=title, prompt=prompt)
        dv.showErrorMessage = True
        dv.showInputMessage = True
        dv.errorStyle = "stop"
        for ref in refs:
            dv.add(ref)
        wb[sheet].add_data_validation(dv)


def _print_setup(wb: Workbook) -> None:
    landscape = {spec.T3_SHEET, spec.T4_SHEET}
    for ws in wb.worksheets:
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if ws.title in landscape else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.page_margins.left = ws.page_margins.right = 0.5
        ws.page_margins.top = ws.page_margins.bottom = 0.6


# =========================================================================================================
# Pre-filling


def _prefill_agency(wb: Workbook, agency: Agency) -> None:
    cover = agency.cover()
    for f in spec.fields(sheet=spec.SHEET_INFO):
        if f.key in cover:
            _set(wb, f.name, cover[f.key], clean=True)
            if f.prefilled:
                _lock(wb, f.name, PREFILLED_NOTE)


def _prefill_previous(wb: Workbook, year: int, previous: Mapping[str, int | Decimal]) -> None:
    carried_in_label = spec.CELL[spec.cell_name("三", "carried_over", "natural")].row
    note = (f"本项按你单位{year - 1}年度报告“{carried_in_label}”预填并锁定。"
            f"如有错误，请联系{OFFICE}更正，请勿自行修改。")
    for c in spec.INPUT_CELLS:
        if c.table != "三" or c.row_key != "carried_in":
            continue
        src = spec.cell_name("三", "carried_over", c.column_key)
        value = previous.get(src)
        if value is None:
            continue
        _set(wb, c.name, _count(value))
        _lock(wb, c.name, note)
    for src, ref_name in spec.T2_REFERENCE_NAMES.items():
        value = previous.get(src)
        if value is not None:
            _set(wb, ref_name, _count(value))


def _count(value: int | Decimal) -> int | Decimal:
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else d


# =========================================================================================================
# Names, properties, protection


def _names(wb: Workbook) -> None:
    for name, (sheet, ref) in spec.all_defined_names().items():
        wb.defined_names[name] = DefinedName(name, attr_text=spec.defined_name_formula(sheet, ref))


def _properties(wb: Workbook, year: int, agency: Agency | None) -> None:
    p = wb.properties
    p.creator = AUTHOR
    p.lastModifiedBy = AUTHOR
    p.title = f"{year}{spec.REPORT_TITLE_SUFFIX}填报表" + (f"（{_clean(agency.name)}）" if agency else "")
    p.subject = f"{spec.FORMAT_TITLE}（{spec.FORMAT_DOCUMENT}）"
    props: list = [
        StringProperty(name=spec.DOC_PROPERTY_FORMAT_VERSION, value=spec.FORMAT_VERSION),
        StringProperty(name=spec.DOC_PROPERTY_FORMAT_DOCUMENT, value=spec.FORMAT_DOCUMENT),
        IntProperty(name=spec.DOC_PROPERTY_REPORT_YEAR, value=year),
    ]
    if agency is not None:
        props.append(StringProperty(name=spec.DOC_PROPERTY_AGENCY_CODE, value=_clean(agency.code)))
    for prop in props:
        wb.custom_doc_props.append(prop)


def _protect(wb: Workbook) -> None:
    for ws in wb.worksheets:
        prot = ws.protection
        prot.sheet = True
        prot.password = SHEET_PASSWORD
        prot.formatColumns = False  # allowed: widen columns
        prot.formatRows = False  # allowed: make rows taller for long texts
        prot.insertRows = prot.deleteRows = prot.insertColumns = prot.deleteColumns = True
        prot.objects = prot.scenarios = True
    wb.security = WorkbookProtection(lockStructure=True)
    wb.security.workbookPassword = SHEET_PASSWORD

