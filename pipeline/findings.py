"""Findings: what validation reports, and the registry of stable finding codes.

A finding is a data problem, returned as a value (never raised). Every finding carries a stable ``code`` from
``REGISTRY``, a severity (``error`` = 错误, blocks the agency's report; ``warning`` = 提示, reported only), the
agency, the file, the sheet and the cells (A1) it concerns, the expected and actual values as text, and a
Chinese message, built from the code's template, that says how to fix it. Tests assert codes and cells.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

from . import spec

Severity = Literal["error", "warning"]
#: The severity of a code that reports one of the format's rules or checks: the format's (spec.SEVERITIES).
FROM_SPEC = "spec"
SEVERITY_LABEL: dict[str, str] = {"error": "错误", "warning": "提示"}
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1}


@dataclass(frozen=True)
class Code:
    """One finding code: stable id, severity, a short Chinese title and a Chinese message template.

    Title and template name the format's labels as ``{L.name}`` (``spec.MESSAGE_LABELS`` of the current format;
    ``title`` and ``template`` give them filled in). The template is ``str.format``-ed with the keyword
    parameters given to ``make`` (plus ``expected`` and ``actual``); it must say what to do. A code that reports
    one of the format's rules or checks (R1…R8, R9_FEE, …) is declared ``FROM_SPEC``: its severity is the one
    the format gives that rule or check.
    """

    code: str
    declared: Severity | Literal["spec"]
    group: str  # 文件 / 结构 / 单位 / 单元格 / 勾稽关系 / 跨年度 / 合理性 / 文字
    title_template: str
    message_template: str

    @property
    def severity(self) -> Severity:
        return spec.SEVERITIES[self.code] if self.declared == FROM_SPEC else self.declared  # type: ignore[return-value]

    @property
    def title(self) -> str:
        return _labelled()[self.code][0]

    @property
    def template(self) -> str:
        return _labelled()[self.code][1]

    def params(self) -> list[str]:
        return sorted({f for _, f, _, _ in string.Formatter().parse(self.template) if f})


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    agency_code: str
    agency_name: str
    file: str  # the file's name as the office sees it (relative to the year folder)
    sheet: str
    cells: tuple[str, ...]  # A1 addresses on ``sheet``
    expected: str
    actual: str
    message: str
    #: The cells the returned workbook (退回修改) marks, a part of ``cells`` (empty: all of them): of a broken
    #: balance rule, the terms the agency types, not every input behind its totals
    marks: tuple[str, ...] = ()

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABEL[self.severity]

    def sort_key(self) -> tuple:
        return (
            self.agency_code,
            self.file,
            SEVERITY_ORDER[self.severity],
            self.code,
            self.sheet,
            tuple(_a1_key(c) for c in self.cells),
            self.expected,
            self.actual,
            self.message,
        )

    def as_json(self) -> dict:
        """The stable machine-readable form (校验结果.json)."""
        return {
            "file": self.file,
            "agency": self.agency_code,
            "agency_name": self.agency_name,
            "sheet": self.sheet,
            "cells": list(self.cells),
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
        }


def _a1_key(ref: str) -> tuple[int, int]:
    """Sort A1 refs by row, then column."""
    col = "".join(ch for ch in ref if ch.isalpha())
    row = "".join(ch for ch in ref if ch.isdigit())
    n = 0
    for ch in col.upper():
        n = n * 26 + (ord(ch) - 64)
    return (int(row) if row else 0, n)


_CODES: tuple[Code, ...] = (
    # ---- files
    Code("FILE_XLS", "error", "文件", "旧版 .xls 文件",
         "文件是 Excel 97-2003（.xls）格式，无法读取：请用 Excel、WPS 或 LibreOffice 打开后“另存为”→“Excel 工作簿（*.xlsx）”"
         "（LibreOffice 中为“Excel 2007-365 (.xlsx)”），再重新报送。"),
    Code("FILE_NOT_XLSX", "error", "文件", "不是 .xlsx 工作簿",
         "文件不是 Excel 工作簿（.xlsx）（{detail}）：请在县政务公开办下发的年报模板中填报，"
         "用 Excel、WPS 或 LibreOffice 另存为“Excel 工作簿（*.xlsx）”（LibreOffice 中为“Excel 2007-365 (.xlsx)”）后重新报送。"),
    Code("FILE_CORRUPT", "error", "文件", "文件损坏",
         "文件已损坏，无法打开（{detail}）：请用 Excel 或 WPS 打开确认无误后重新保存为 .xlsx 报送。"),
    Code("FILE_ENCRYPTED", "error", "文件", "文件设置了密码",
         "文件设置了打开密码，无法读取：请在 Excel 或 WPS 中取消密码（文件→信息→保护工作簿→用密码进行加密，清空密码）后重新报送。"),
    Code("FILE_TOO_LARGE", "error", "文件", "文件异常庞大",
         "文件内容异常庞大（{detail}），可能不是正常填报的年报工作簿：请使用县政务公开办下发的模板重新填报。"),
    Code("FILE_UNREADABLE", "error", "文件", "文件或文件夹无法读取",
         "{what}无法读取（{detail}）：这不表示文件已损坏。请确认运行本程序的账户有权读取该{what}（属性→安全/权限），"
         "或把报表重新复制到年度文件夹后再运行。"),
    Code("FILE_LINK", "error", "文件", "符号链接未读取",
         "这是{detail}，程序不跟随它读取：请把报表文件本身（不是快捷方式或链接）复制到年度文件夹后重新运行。"),
    # ---- structure
    Code("NOT_TEMPLATE", "error", "结构", "不是本年报模板",
         "该工作簿不是县政务公开办下发的年报模板（{detail}）：请下载本年度模板重新填报，不要自行制表。"),
    Code("OLD_FORMAT", "error", "结构", "使用了2019年试行格式",
         "工作簿使用的是已废止的2019年试行格式（{L.old_format_document}），其中“{actual}”是旧版格式的表头："
         "请改用按{L.format_document}格式制作的本年度模板重新填报。"),
    Code("FORMAT_VERSION", "error", "结构", "格式版本不符",
         "工作簿的格式版本为“{actual}”，应为“{expected}”：请使用本年度下发的模板，不要修改“{L.format_version}”单元格。"),
    Code("REPORT_YEAR", "error", "结构", "报告年度不符",
         "工作簿填写的报告年度为“{actual}”，本次收集的是{expected}年度报告：如误报了其他年度的报表，请改报{expected}年度的；"
         "如填的确是{expected}年度的数据，请向县政务公开办索取本单位{expected}年度的预填报表，把数据填入后重新报送"
         "（“{L.report_year}”单元格已锁定，不要自行修改）。"),
    Code("SHEET_MISSING", "error", "结构", "工作表缺失或被改名",
         "找不到工作表“{expected}”：请不要删除或重命名模板中的工作表。"),
    Code("NAME_MISSING", "error", "结构", "单元格名称缺失或失效",
         "模板单元格“{label}”的名称（{name}）缺失或失效（可能删除了所在的行或列）：请使用原模板重新填报，不要删除行或列。"),
    Code("STRUCTURE_CHANGED", "error", "结构", "插入或删除了行、列",
         "工作表“{sheet}”中表格位置发生了移动（{detail}），说明插入或删除了行或列：请撤销插入/删除，按原模板的行列填写。"),
    Code("LABEL_CHANGED", "error", "结构", "表头或行列标题被修改",
         "单元格 {cell} 的标题应为“{expected}”，实为“{actual}”：请恢复模板原有的标题文字，不要修改表格的行列标题。"),
    Code("LABEL_VARIANT", "warning", "结构", "表头或行列标题与模板略有不同",
         "单元格 {cell} 的标题应为“{expected}”，实为“{actual}”（{detail}）：单元格名称和表格位置都未改动，已按模板读取；"
         "请恢复模板原有的标题文字。"),
    # ---- agency
    Code("AGENCY_UNKNOWN", "error", "单位", "单位不在名册中",
         "工作簿中的单位代码“{code}”、单位名称“{name}”不在本县单位名册中：请使用县政务公开办下发的本单位预填模板，"
         "或核对“{L.agency_code}”“{L.agency_name}”。"),
    Code("AGENCY_CONFLICT", "error", "单位", "单位代码与单位名称分属不同单位",
         "{detail}：无法确定这份报表是哪个单位的，未计入任何单位。请在“{L.info_sheet}”工作表核对 {code_cell}（{L.agency_code}）"
         "和 {name_cell}（{L.agency_name}），改为本单位在名册中的代码和名称后重新报送（代码可向县政务公开办查询，"
         "或使用下发的本单位预填报表）。"),
    Code("AGENCY_NAME_MISMATCH", "warning", "单位", "单位名称与名册不一致",
         "单位名称应为“{expected}”（名册），工作簿中为“{actual}”：请核对单位全称。"),
    Code("AGENCY_ID_EMPTY", "error", "单位", "单位名称或单位代码未填写",
         "{where}未填写：“{L.agency_name}”和“{L.agency_code}”是确定报表所属单位的依据，请填写本单位在名册中的“{label}”"
         "（可向县政务公开办查询，或使用下发的本单位预填报表）后重新报送。"),
    Code("AGENCY_DUPLICATE", "error", "单位", "同一单位报送了多个工作簿",
         "单位“{name}”报送了多个工作簿：{files}。请确认哪一个是正式版本，删除其余文件后重新报送。"),
    Code("AGENCY_MISSING", "error", "单位", "名册单位未报送",
         "名册中的单位“{name}”（代码 {code}）没有报送{year}年度工作簿{detail}：请催报。"),
    # ---- cells
    Code("CELL_TEXT", "error", "单元格", "数字单元格中填了文字",
         "{where}应填数字，实为“{actual}”：请只填阿拉伯数字（没有的填 0），不要填写文字或单位。"),
    Code("CELL_COERCED", "warning", "单元格", "数字单元格的写法已自动更正",
         "{where}填写为“{actual}”，已按 {expected} 读取：请改为只填阿拉伯数字（没有的填 0）。"),
    Code("UNIT_CONVERTED", "warning", "单元格", "金额单位与本栏不同，已换算",
         "{where}填写为“{actual}”，本栏的单位是“{unit}”，已换算为 {expected} 读取：请核对换算结果，"
         "并改为只填以“{unit}”为单位的数字。"),
    Code("CELL_BLANK", "warning", "单元格", "空白单元格按 0 计",
         "表{table}有 {count} 个单元格为空（{detail}），已按 0 计：没有的请填 0。"),
    Code("CELL_NEGATIVE", "error", "单元格", "出现负数（R4）",
         "{where}为负数 {actual}：件数和金额不能为负，请改正。"),
    Code("CELL_DECIMAL", "error", "单元格", "件数出现小数（R4）",
         "{where}为 {actual}：件数必须是整数，请改正。"),
    Code("CELL_EXCEL_ERROR", "error", "单元格", "单元格显示错误值",
         "{where}显示错误值 {actual}（公式或引用出错）：请改为直接填写数字。"),
    Code("MONEY_PRECISION", "warning", "单元格", "金额小数位过多",
         "{where}为 {actual} {L.money_unit}，超过{L.money_max_decimals}位小数：请核对单位是否为“{L.money_unit}”，一般保留2位小数。"),
    Code("CELL_OUTSIDE", "warning", "单元格", "表格以外填有数字",
         "工作表“{sheet}”的 {cell} 在表格以外填有数字（{actual}），这些数字不会被读取：请把数字填入表格相应的单元格，并删除表格以外的内容。"),
    Code("FIELD_REQUIRED", "warning", "单元格", "必填项未填写",
         "{where}未填写：“{label}”是必填项，请填写。"),
    Code("FIELD_INVALID", "warning", "单元格", "填报项格式不对",
         "{where}填写为“{actual}”，应为{expected}：请改正。"),
    Code("REPORT_UNFILLED", "error", "单元格", "报表未填写",
         "报表未填写：表二至表四的数字都还是模板中的预填值（0 或{L.carried_in_short}），一、五、六部分的文字都是空白，"
         "这份报表看来未经填写就报回了：请填写各表格的数字（没有的填 0）和各部分文字，确认无误后重新报送。"),
    # ---- cross-footing (勾稽关系, FORMAT-2021.md §8)
    Code("R1", FROM_SPEC, "勾稽关系", "R1 {L.r1}",
         "{title}：左边 {lhs_desc} = {lhs}，右边 {rhs_desc} = {rhs}，相差 {gap}：{L.row_total}为各项办理结果之和，"
         "请逐行核对表三该列的办理结果，以及两边已标出的单元格。"),
    Code("R2", FROM_SPEC, "勾稽关系", "R2 表三{L.t3_total}列等于各类申请人之和",
         "{title}：{L.t3_total}填为 {shown}，但各类申请人之和为 {sum}，相差 {gap}：请核对该行各项数字，总计应等于各类申请人之和"
         "（模板中总计为自动计算，请不要手工改写）。"),
    Code("R3", FROM_SPEC, "勾稽关系", "R3 {L.row_total}等于各项办理结果之和",
         "{title}：{L.row_total}填为 {shown}，但各项办理结果之和为 {sum}，相差 {gap}：请核对该列办理结果各行"
         "（模板中总计为自动计算，请不要手工改写）。"),
    Code("R5", FROM_SPEC, "勾稽关系", "R5 表四{L.t4_total}等于各结果之和",
         "{title}：{L.t4_total}填为 {shown}，但各结果之和为 {sum}，相差 {gap}：请核对（模板中总计为自动计算，请不要手工改写）。"),
    # ---- cross-year
    Code("R8", FROM_SPEC, "跨年度", "R8 {L.carried_in_short}等于上年报告的{L.carried_over_short}",
         "{title}：本年“{L.carried_in}”为 {actual}，上年报告“{L.carried_over}”为 {expected}，相差 {gap}："
         "请按上年年报改正本年“{L.carried_in_short}”。"),
    Code("R6", FROM_SPEC, "跨年度", "R6 {L.in_force}与上年不衔接",
         "{title}：上年{L.in_force_short} {last} + {L.issued_short} {issued} − {L.repealed_short} {repealed} = {sum}，"
         "本年{L.in_force_short}填为 {in_force}，相差 {gap}：请核对；如有文件到期失效等情况，请在{L.overview_title}中说明。"),
    Code("PREVIOUS_MISSING", "warning", "跨年度", "未找到本单位上年报表",
         "未能核对{L.carried_in_short}：未找到该单位上年（{last_year}年度）的报表，本年“{L.carried_in}”是否等于上年报告的"
         "“{L.carried_over}”（R8）和与上年相比的变化都未核对，全县同比也不含该单位：请对照本单位上年年报核对"
         "“{L.carried_in_short}”各栏；如上年报送过报表，请县政务公开办把它放入{last_year}年度文件夹后重新校验。"),
    Code("YOY_JUMP", "warning", "跨年度", "与上年相比变化很大",
         "{where}本年为 {actual}，上年为 {expected}，变化很大：请核对数字是否准确（单位、统计口径）。"),
    # ---- plausibility
    Code("R9_FEE", FROM_SPEC, "合理性", "R9 收费通知与第{L.fee_section}部分不一致",
         "表三“{L.fee_row}”{L.t3_total}为 {count}，说明发出过收费通知，但第{L.fee_section}部分{detail}："
         "请在第{L.fee_section}部分如实报告信息处理费收取情况。"),
    Code("R11_REGULATIONS", FROM_SPEC, "合理性", "R11 县级单位填报了{L.regulations}",
         "表二“{L.regulations}”行填有数字（{actual}）：{L.department}和{L.township}没有规章制定权，此行一般应为 0，"
         "请核对是否应填入“{L.normative_documents}”。"),
    Code("OTHER_HIGH", FROM_SPEC, "合理性", "“{L.other_row_short}”数量偏高",
         "表三“{L.other_row}”为 {actual}，占办理结果总数 {total} 的比例偏高：请核对能否归入具体的办理结果类别。"),
    # ---- texts
    Code("TEXT_EMPTY", "warning", "文字", "文字部分未填写",
         "“{label}”未填写：请按格式要求如实填写（没有的填“无”）。"),
    Code("TEXT_TOO_LONG", "warning", "文字", "{L.overview_title}篇幅过长",
         "“{L.overview}”共 {actual} 字，超过格式要求的原则上不超过 {expected} 字：请精简。"),
    Code("TEXT_TOO_LONG_CELL", "warning", "文字", "单元格文字过长",
         "“{label}”有 {actual} 字，超过读取上限 {expected} 字，超出部分未读取：请精简。"),
    Code("TEXT_OTHER_YEAR", "warning", "文字", "文字中出现其他年份",
         "“{label}”中出现“{actual}”，而本报告为{expected}年度：请确认不是沿用往年报告的文字。"),
    Code("TEXT_SAME_AS_LAST_YEAR", "warning", "文字", "与本单位上年报告雷同",
         "“{label}”与本单位上年报告的同一部分相似度 {actual}：格式要求不得年年雷同，请根据本年实际情况撰写。"),
    Code("TEXT_SAME_AS_OTHER", "warning", "文字", "与其他单位本年报告雷同",
         "“{label}”与“{other}”本年报告的同一部分相似度 {actual}：请根据本单位实际情况撰写。"),
    Code("TEXT_NUMBER_MISMATCH", FROM_SPEC, "文字", "文字中的数字与表格不一致（R10）",
         "“{label}”（{text_cell}）写有“{sentence}”：文字中{what}为 {actual}，而表格中为 {expected}"
         "（{table_cells}）。{hint}。"),
)

#: TEXT_NUMBER_MISMATCH's ``hint``: which side to correct, by whether the table passes every cross-footing rule.
TEXT_NUMBER_HINTS: dict[bool, str] = {
    True: "表格各项勾稽关系均成立，以表格为准，请修改文字",
    False: "表格本身勾稽关系不成立，请先核对表格，再使文字与之一致",
}

REGISTRY: dict[str, Code] = {c.code: c for c in _CODES}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in _CODES))


def _with_labels(text: str, labels: SimpleNamespace) -> str:
    """``text`` with its ``{L.name}`` fields filled in; every other field kept for ``make``."""
    out = []
    for literal, name, format_spec, conversion in string.Formatter().parse(text):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name.startswith("L."):
            out.append(str(getattr(labels, name[2:])).replace("{", "{{").replace("}", "}}"))
        else:
            out.append("{" + name + (f"!{conversion}" if conversion else "") + (f":{format_spec}" if format_spec else "")
                       + "}")
    return "".join(out)


@spec.per_format
def _labelled() -> dict[str, tuple[str, str]]:
    """code → (title, template) with the current format's labels filled in (once per format)."""
    labels = SimpleNamespace(**spec.MESSAGE_LABELS)
    return {c.code: (_with_labels(c.title_template, labels).replace("{{", "{").replace("}}", "}"),
                     _with_labels(c.message_template, labels)) for c in _CODES}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def make(
    code: str,
    /,
    *,
    agency_code: str = "",
    agency_name: str = "",
    file: str = "",
    sheet: str = "",
    cells: tuple[str, ...] | list[str] = (),
    expected: object = "",
    actual: object = "",
    marks: tuple[str, ...] | list[str] = (),
    **params: object,
) -> Finding:
    """A finding of a registered code, its message formatted from the code's template."""
    entry = REGISTRY[code]  # KeyError: a programming error, not a data problem
    exp, act = _text(expected), _text(actual)
    fmt = {"sheet": sheet, "cell": ",".join(cells), **params, "expected": exp, "actual": act}
    message = string.Formatter().vformat(entry.template, (), _Blank(fmt))
    return Finding(
        code=code,
        severity=entry.severity,
        agency_code=agency_code,
        agency_name=agency_name,
        file=file,
        sheet=sheet,
        cells=tuple(cells),
        expected=exp,
        actual=act,
        message=message,
        marks=tuple(marks),
    )


def _text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def registry_markdown() -> str:
    """The table of finding codes for the README (generated; a test keeps the README current)."""
    lines = [
        "| 代码 | 级别 | 类别 | 说明 | 提示信息模板 |",
        "|---|---|---|---|---|",
    ]
    for c in _CODES:
        tpl = c.template.replace("|", "\\|")
        lines.append(f"| `{c.code}` | {SEVERITY_LABEL[c.severity]} | {c.group} | {c.title} | {tpl} |")
    return "\n".join(lines) + "\n"
