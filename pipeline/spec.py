"""The 2021 national format (国办公开办函〔2021〕30号), declared once.

Everything else in nianbao derives from this module: the Excel template writer (labels, input cells,
defined names, formulas, check cells), the reader (which cell holds what, which labels must surround a
table), the validator (the cross-footing rules R1-R5 and the cross-year rules R6/R8) and the renderer
(headings and table labels of the Word report).

Source of the labels: ../shared/FORMAT-2021.md, §2-§9. Labels are copied character for character.
The tables are declared as trees (row groups, column groups, total rows/columns); the cells, their
Excel positions and the arithmetic rules are generated from those trees, never typed one by one.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal
from collections.abc import Callable, Iterable, Iterator

from openpyxl.utils import get_column_letter, quote_sheetname

FORMAT_TITLE = "中华人民共和国政府信息公开工作年度报告格式"
REPORT_TITLE_SUFFIX = "年政府信息公开工作年度报告"
#: Agencies publish by 31 January of the following year (FORMAT-2021.md §3).
AGENCY_DEADLINE = "1月31日"
#: The county office publishes its summary by 20 February (FORMAT-2021.md §3).
COUNTY_DEADLINE = "2月20日"
#: 总体情况 should in principle not exceed 1,000 characters (FORMAT-2021.md §2).
OVERVIEW_MAX_CHARS = 1000

Kind = Literal["count", "money", "text", "choice", "year", "date"]

# --------------------------------------------------------------------------------------------------
# Sections (FORMAT-2021.md §2)


@dataclass(frozen=True)
class Section:
    number: str  # 一 … 六
    title: str  # 总体情况
    sheet: str  # the workbook sheet that holds the section
    note: str = ""  # the template's remark, e.g. （文字描述）

    @property
    def heading(self) -> str:
        return f"{self.number}、{self.title}"


SECTIONS: tuple[Section, ...] = (
    Section("一", "总体情况", "一、总体情况", "（文字描述）"),
    Section("二", "主动公开政府信息情况", "二、主动公开"),
    Section("三", "收到和处理政府信息公开申请情况", "三、依申请公开"),
    Section("四", "政府信息公开行政复议、行政诉讼情况", "四、复议诉讼"),
    Section("五", "存在的主要问题及改进情况", "五、问题与改进", "（文字描述）"),
    Section("六", "其他需要报告的事项", "六、其他事项", "（文字描述，收取信息处理费情况在此处报告。）"),
)
SECTION = {s.number: s for s in SECTIONS}

SHEET_GUIDE = "填报说明"
SHEET_INFO = "基本信息"
SHEETS: tuple[str, ...] = (SHEET_GUIDE, SHEET_INFO) + tuple(s.sheet for s in SECTIONS)

# --------------------------------------------------------------------------------------------------
# Agency categories


@dataclass(frozen=True)
class Category:
    key: str
    label: str


CATEGORIES: tuple[Category, ...] = (
    Category("county_government", "本级"),
    Category("department", "县直部门"),
    Category("township", "乡镇（街道）"),
)
CATEGORY_LABELS: tuple[str, ...] = tuple(c.label for c in CATEGORIES)

#: The two answers of a yes/no field (本年是否收取信息处理费).
YES, NO = "是", "否"

# --------------------------------------------------------------------------------------------------
# Table trees


@dataclass(frozen=True)
class Node:
    """A row or a column of a table. A node with children is a group label with no numbers of its own.

    ``total_of`` marks a total: the key of the group whose other leaves it sums (``"*"``: all sibling leaves
    of the whole axis). ``flow`` marks the rows of the stated identity 一+二 = （七）+四 ("in" / "out").
    ``short`` is the short form messages and the county summary's paragraphs use (上年结转 for
    二、上年结转政府信息公开申请数量); ``number`` and ``bare`` are the label's numbering and the label without it.
    """

    key: str
    label: str
    children: tuple[Node, ...] = ()
    total_of: str | None = None
    flow: Literal["in", "out", None] = None
    short: str = ""

    @property
    def is_group(self) -> bool:
        return bool(self.children)

    @property
    def number(self) -> str:
        """The label's numbering: 二、 / （六） / 3. ('' for none)."""
        m = _NUMBERING.match(self.label)
        return m.group(0) if m else ""

    @property
    def bare(self) -> str:
        """The label without its numbering: 结转下年度继续办理."""
        return self.label[len(self.number):]

    @property
    def brief(self) -> str:
        """The short form, else the bare label up to its first （ or 、 (申请人逾期未按收费通知要求缴纳费用)."""
        return self.short or _BRIEF_END.split(self.bare, maxsplit=1)[0]

    def leaves(self) -> Iterator[Node]:
        if self.children:
            for child in self.children:
                yield from child.leaves()
        else:
            yield self


_NUMBERING = re.compile(r"[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\d+\.")
_BRIEF_END = re.compile(r"[（、]")


def _leaf(key: str, label: str, **kw) -> Node:
    return Node(key, label, **kw)


def _group(key: str, label: str, *children: Node, **kw) -> Node:
    return Node(key, label, tuple(children), **kw)


# Table 二 (FORMAT-2021.md §4): four blocks, each with its own header.
@dataclass(frozen=True)
class Block:
    title: str  # 第二十条第（一）项
    columns: tuple[Node, ...]
    rows: tuple[Node, ...]


T2_HEADER = "信息内容"
T2_BLOCKS: tuple[Block, ...] = (
    Block(
        "第二十条第（一）项",
        (
            _leaf("issued", "本年制发件数", short="本年制发"),
            _leaf("repealed", "本年废止件数", short="本年废止"),
            _leaf("in_force", "现行有效件数", short="现行有效"),
        ),
        (_leaf("regulations", "规章"), _leaf("normative_documents", "行政规范性文件")),
    ),
    Block(
        "第二十条第（五）项",
        (_leaf("decisions", "本年处理决定数量"),),
        (_leaf("licensing", "行政许可"),),
    ),
    Block(
        "第二十条第（六）项",
        (_leaf("decisions", "本年处理决定数量"),),
        (_leaf("penalties", "行政处罚"), _leaf("enforcement", "行政强制")),
    ),
    Block(
        "第二十条第（八）项",
        (_leaf("amount", "本年收费金额（单位：万元）"),),
        (_leaf("fees", "行政事业性收费"),),
    ),
)
#: The one money cell of the format: 本年收费金额, in 万元.
MONEY_COLUMNS = frozenset({"amount"})

#: Units of money: how many 元 one of them is. A number's unit is read off its label (``unit_of``).
MONEY_UNITS: dict[str, Decimal] = {"元": Decimal(1), "万元": Decimal(10000)}
#: The unit of every count (tables 三/四, 件数 of table 二, the number of fee notices).
COUNT_UNIT = "件"
_LABEL_UNIT_RE = re.compile(r"（(?:单位：)?(" + "|".join(sorted(MONEY_UNITS, key=len, reverse=True)) + r")）$")


def unit_of(label: str, kind: str) -> str:
    """The unit a number is entered in: 件 for counts, a money label's own （单位：万元） / （元）."""
    if kind == "count":
        return COUNT_UNIT
    if kind != "money":
        return ""
    m = _LABEL_UNIT_RE.search(label)
    if m is None:
        raise AssertionError(f"money label without its unit: {label}")
    return m.group(1)

# Table 三 (FORMAT-2021.md §5)
#: The identity the format prints in table 三's corner (R1).
R1_STATEMENT = "第一项加第二项之和，等于第三项加第四项之和"
T3_CORNER = f"（本列数据的勾稽关系为：{R1_STATEMENT}）"
T3_COLUMNS: tuple[Node, ...] = (
    _group(
        "applicants",
        "申请人情况",
        _leaf("natural", "自然人"),
        _group(
            "organisations",
            "法人或其他组织",
            _leaf("business", "商业企业"),
            _leaf("research", "科研机构"),
            _leaf("nonprofit", "社会公益组织"),
            _leaf("legal", "法律服务机构"),
            _leaf("other", "其他"),
        ),
        _leaf("total", "总计", total_of="*"),
    ),
)
T3_ROWS: tuple[Node, ...] = (
    _leaf("new", "一、本年新收政府信息公开申请数量", flow="in"),
    _leaf("carried_in", "二、上年结转政府信息公开申请数量", flow="in", short="上年结转"),
    _group(
        "results",
        "三、本年度办理结果",
        _leaf("granted", "（一）予以公开"),
        _leaf("partial", "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"),
        _group(
            "withheld",
            "（三）不予公开",
            _leaf("withheld_secret", "1.属于国家秘密"),
            _leaf("withheld_prohibited", "2.其他法律行政法规禁止公开"),
            _leaf("withheld_security", "3.危及“三安全一稳定”"),
            _leaf("withheld_third_party", "4.保护第三方合法权益"),
            _leaf("withheld_internal", "5.属于三类内部事务信息"),
            _leaf("withheld_process", "6.属于四类过程性信息"),
            _leaf("withheld_enforcement_file", "7.属于行政执法案卷"),
            _leaf("withheld_inquiry", "8.属于行政查询事项"),
        ),
        _group(
            "unavailable",
            "（四）无法提供",
            _leaf("unavailable_not_held", "1.本机关不掌握相关政府信息"),
            _leaf("unavailable_needs_creation", "2.没有现成信息需要另行制作"),
            _leaf("unavailable_unclear", "3.补正后申请内容仍不明确"),
        ),
        _group(
            "not_processed",
            "（五）不予处理",
            _leaf("not_processed_petition", "1.信访举报投诉类申请"),
            _leaf("not_processed_repeat", "2.重复申请"),
            _leaf("not_processed_publication", "3.要求提供公开出版物"),
            _leaf("not_processed_mass", "4.无正当理由大量反复申请"),
            _leaf("not_processed_confirmation", "5.要求行政机关确认或重新出具已获取信息"),
        ),
        _group(
            "other_handling",
            "（六）其他处理",
            _leaf(
                "other_no_correction",
                "1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
            ),
            _leaf(
                "other_fee_unpaid",
                "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
            ),
            _leaf("other_other", "3.其他"),
        ),
        _leaf("total", "（七）总计", total_of="results", flow="out"),
    ),
    _leaf("carried_over", "四、结转下年度继续办理", flow="out", short="结转下年度"),
)

# Table 四 (FORMAT-2021.md §6): one data row; the "rows" of the spec are the three groups.
T4_RESULTS: tuple[Node, ...] = (
    _leaf("upheld", "结果维持"),
    _leaf("corrected", "结果纠正"),
    _leaf("other", "其他结果"),
    _leaf("pending", "尚未审结"),
    _leaf("total", "总计", total_of="*"),
)
T4_GROUPS: tuple[Node, ...] = (
    _group("reconsideration", "行政复议", *T4_RESULTS),
    _group(
        "litigation",
        "行政诉讼",
        _group("litigation_direct", "未经复议直接起诉", *T4_RESULTS),
        _group("litigation_after", "复议后起诉", *T4_RESULTS),
    ),
)

# --------------------------------------------------------------------------------------------------
# Cells, labels and their Excel positions


@dataclass(frozen=True)
class CellSpec:
    """One number cell of tables 二, 三, 四."""

    name: str  # workbook-level defined name, stable
    table: str  # 二 / 三 / 四
    row_key: str
    column_key: str
    row: str  # official row label (table 四: the group 行政复议 / 未经复议直接起诉 / 复议后起诉)
    column: str  # official column label
    row_path: tuple[str, ...]  # the labels of the enclosing row groups, outermost first
    sheet: str
    ref: str  # A1 address
    kind: Literal["count", "money"]
    computed: bool = False
    addends: tuple[str, ...] = ()  # names of the cells a computed cell sums
    merge_to: str | None = None  # bottom-right of the merged value cell (table 二's one-column blocks)
    unit: str = COUNT_UNIT  # 件, or the money column's unit (万元), from its label
    addend_refs: tuple[str, ...] = ()  # A1 addresses of ``addends`` (same sheet)

    @property
    def address(self) -> str:
        return f"{self.sheet}!{self.ref}"

    def formula(self) -> str | None:
        """The Excel formula of a computed cell, from the positions of its addends."""
        if not self.computed:
            return None
        return f"=SUM({_compact_range(list(self.addend_refs))})"


@dataclass(frozen=True)
class LabelSpec:
    """A fixed label the template writes and the reader verifies."""

    sheet: str
    ref: str
    text: str
    merge_to: str | None = None  # bottom-right of a merged range
    role: Literal["title", "header", "row", "column", "block", "note"] = "header"


@dataclass(frozen=True)
class FieldSpec:
    """A cover, text or fee field outside the three tables."""

    name: str
    key: str
    label: str
    sheet: str
    ref: str
    kind: Kind
    section: str | None = None  # 一 / 五 / 六 for text fields
    required: bool = True  # left empty: a finding (TEXT_EMPTY / FIELD_REQUIRED; AGENCY_ID_EMPTY if ``identifies``)
    identifies: bool = False  # the workbook's agency is identified by it (单位名称, 单位代码)
    prefilled: bool = False  # filled by nianbao in an agency's pre-filled workbook (then locked)
    choices: tuple[str, ...] = ()
    hint: str = ""
    unit: str = ""  # of a count or money field: 件 / 元, from its label


@dataclass(frozen=True)
class Rule:
    """Σ lhs = Σ rhs − Σ minus + Σ last_year, over named cells.

    ``lhs``, ``rhs`` and ``minus`` are cells of the agency's workbook for the report year; ``last_year`` are
    cells of the same agency's workbook for the year before (cross-year rules only). ``id`` is R1…R8;
    ``key`` is unique (R1.natural).
    """

    id: str
    key: str
    table: str
    title: str  # Chinese, for people
    lhs: tuple[str, ...]
    rhs: tuple[str, ...]
    minus: tuple[str, ...] = ()
    last_year: tuple[str, ...] = ()
    scope: Literal["agency", "cross_year"] = "agency"
    severity: Literal["error", "warning"] = "error"

    @property
    def cells(self) -> tuple[str, ...]:
        """This year's cells involved, lhs first, without repeats."""
        return tuple(dict.fromkeys(self.lhs + self.rhs + self.minus))

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input cells behind ``cells``: each total replaced by its addends, recursively (lhs first, in order,
        without repeats). These are the cells a person types; the totals are the template's locked formulas."""
        return current().inputs_of(self.cells)

    def excel_check(self) -> str:
        """An Excel boolean expression that is TRUE when the rule holds (agency rules only)."""
        if self.scope != "agency":
            raise ValueError("cross-year rules have no in-workbook check")
        return f"{_sum_expr(self.lhs)}={_sum_expr(self.rhs)}"


def _sum_expr(names: tuple[str, ...]) -> str:
    cell = current().CELL
    refs = [cell[n].ref for n in names]
    if len(refs) == 1:
        return refs[0]
    return "+".join(refs) if len(refs) <= 2 else f"SUM({_compact_range(refs)})"


def _compact_range(refs: list[str]) -> str:
    """A1 refs in one row or one column, contiguous → 'D5:I5'; otherwise a comma list."""
    parsed = [_split_ref(r) for r in refs]
    cols = [c for c, _ in parsed]
    rows = [r for _, r in parsed]
    if len(set(rows)) == 1 and cols == list(range(cols[0], cols[0] + len(cols))):
        return f"{refs[0]}:{refs[-1]}"
    if len(set(cols)) == 1 and rows == list(range(rows[0], rows[0] + len(rows))):
        return f"{refs[0]}:{refs[-1]}"
    return ",".join(refs)


def _split_ref(ref: str) -> tuple[int, int]:
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    col, row = coordinate_from_string(ref)
    return column_index_from_string(col), row


def _a1(col: int, row: int) -> str:
    return f"{get_column_letter(col)}{row}"


# -- table 二 layout: columns A-D; a reference column F shows last year's 现行有效件数 -------------------
T2_SHEET = SECTION["二"].sheet
T2_FIRST_ROW = 2
T2_REFERENCE_HEADER = "上年现行有效件数（参考）"
T2_REFERENCE_COL = 6  # F

# -- table 三 layout: label columns A-C, data columns D-J, data rows 5-29 -------------------------------
T3_SHEET = SECTION["三"].sheet
T3_HEADER_ROW = 2
T3_FIRST_DATA_ROW = 5
T3_FIRST_DATA_COL = 4  # D

# -- table 四 layout: data columns A-O, data row 5 ---------------------------------------------------
T4_SHEET = SECTION["四"].sheet
T4_DATA_ROW = 5

CHECK_LABEL = "勾稽关系校验"
CHECK_OK = "✓"
CHECK_FAIL = "✗"


@dataclass(frozen=True)
class CheckSpec:
    """A visible in-workbook check: one cell per rule, shown red by conditional formatting.

    ``spans`` (when given, one per rule ref) are the bottom-right corners of the check cells' merged ranges (a
    check cell under all the columns of its group); ``label_to`` and ``summary_to`` those of the label and of
    the summary cell. Without them the template merges the label up to the first check cell."""

    sheet: str
    label_ref: str
    rule_refs: tuple[tuple[str, str], ...]  # (rule key, A1 of the check cell)
    summary_ref: str  # one cell: 全部通过 / 有误
    spans: tuple[str, ...] = ()
    label_to: str | None = None
    summary_to: str | None = None


def _build(d: Definition) -> tuple[tuple[CellSpec, ...], tuple[LabelSpec, ...], tuple[CheckSpec, ...], tuple[FieldSpec, ...]]:
    cells: list[CellSpec] = []
    labels: list[LabelSpec] = []

    # ---- table 二
    sh = T2_SHEET
    labels.append(LabelSpec(sh, "A1", SECTION["二"].heading, "D1", "title"))
    r = T2_FIRST_ROW
    for block in d.t2_blocks:
        labels.append(LabelSpec(sh, _a1(1, r), block.title, _a1(4, r), "block"))
        r += 1
        labels.append(LabelSpec(sh, _a1(1, r), T2_HEADER, None, "column"))
        wide = len(block.columns) == 1
        for j, col in enumerate(block.columns):
            labels.append(LabelSpec(sh, _a1(2 + j, r), col.label, _a1(4, r) if wide else None, "column"))
        r += 1
        for row in block.rows:
            labels.append(LabelSpec(sh, _a1(1, r), row.label, None, "row"))
            for j, col in enumerate(block.columns):
                cells.append(
                    CellSpec(
                        name=f"T2_{row.key}_{col.key}",
                        table="二",
                        row_key=row.key,
                        column_key=col.key,
                        row=row.label,
                        column=col.label,
                        row_path=(block.title,),
                        sheet=sh,
                        ref=_a1(2 + j, r),
                        kind="money" if col.key in MONEY_COLUMNS else "count",
                        merge_to=_a1(4, r) if wide else None,
                        unit=unit_of(col.label, "money" if col.key in MONEY_COLUMNS else "count"),
                    )
                )
            r += 1

    # ---- table 三
    sh = T3_SHEET
    col_leaves = [leaf for top in d.t3_columns for leaf in top.leaves()]
    last_col = T3_FIRST_DATA_COL + len(col_leaves) - 1
    labels.append(LabelSpec(sh, "A1", SECTION["三"].heading, _a1(last_col, 1), "title"))
    h = T3_HEADER_ROW
    labels.append(LabelSpec(sh, _a1(1, h), T3_CORNER, _a1(3, h + 2), "note"))
    applicants = d.t3_columns[0]
    labels.append(LabelSpec(sh, _a1(T3_FIRST_DATA_COL, h), applicants.label, _a1(last_col, h), "column"))
    c = T3_FIRST_DATA_COL
    for node in applicants.children:
        if node.is_group:
            n = len(list(node.leaves()))
            labels.append(LabelSpec(sh, _a1(c, h + 1), node.label, _a1(c + n - 1, h + 1), "column"))
            for k, leaf in enumerate(node.children):
                labels.append(LabelSpec(sh, _a1(c + k, h + 2), leaf.label, None, "column"))
            c += n
        else:
            labels.append(LabelSpec(sh, _a1(c, h + 1), node.label, _a1(c, h + 2), "column"))
            c += 1

    row_of: dict[str, int] = {}
    r = T3_FIRST_DATA_ROW

    def place_rows(nodes: tuple[Node, ...], depth: int, path: tuple[str, ...]) -> None:
        nonlocal r
        for node in nodes:
            if node.is_group:
                n = len(list(node.leaves()))
                # a group label spans its leaves' rows in its own column (A for 三、, B for （三）…)
                labels.append(LabelSpec(sh, _a1(1 + depth, r), node.label, _a1(1 + depth, r + n - 1), "row"))
                place_rows(node.children, depth + 1, path + (node.label,))
            else:
                labels.append(LabelSpec(sh, _a1(1 + depth, r), node.label, _a1(3, r) if depth < 2 else None, "row"))
                row_of[node.key] = r
                for j, col in enumerate(col_leaves):
                    cells.append(
                        CellSpec(
                            name=f"T3_{node.key}_{col.key}",
                            table="三",
                            row_key=node.key,
                            column_key=col.key,
                            row=node.label,
                            column=col.label,
                            row_path=path,
                            sheet=sh,
                            ref=_a1(T3_FIRST_DATA_COL + j, r),
                            kind="count",
                        )
                    )
                r += 1

    place_rows(d.t3_rows, 0, ())
    t3_last_row = r - 1

    # ---- table 四
    sh = T4_SHEET
    groups = _t4_leaf_groups(d)
    ncols = sum(len(g.children) for g, _ in groups)
    labels.append(LabelSpec(sh, "A1", SECTION["四"].heading, _a1(ncols, 1), "title"))
    c = 1
    for top in d.t4_groups:
        width = len(list(top.leaves()))
        labels.append(LabelSpec(sh, _a1(c, 2), top.label, _a1(c + width - 1, 2), "column"))
        if top.children[0].is_group:  # 行政诉讼: two sub-groups, results in row 4
            cc = c
            for sub in top.children:
                labels.append(LabelSpec(sh, _a1(cc, 3), sub.label, _a1(cc + len(sub.children) - 1, 3), "column"))
                for k, res in enumerate(sub.children):
                    labels.append(LabelSpec(sh, _a1(cc + k, 4), res.label, None, "column"))
                cc += len(sub.children)
        else:  # 行政复议: results span rows 3-4
            for k, res in enumerate(top.children):
                labels.append(LabelSpec(sh, _a1(c + k, 3), res.label, _a1(c + k, 4), "column"))
        c += width
    c = 1
    for group, path in groups:
        for res in group.children:
            cells.append(
                CellSpec(
                    name=f"T4_{group.key}_{res.key}",
                    table="四",
                    row_key=group.key,
                    column_key=res.key,
                    row=group.label,
                    column=res.label,
                    row_path=path,
                    sheet=sh,
                    ref=_a1(c, T4_DATA_ROW),
                    kind="count",
                )
            )
            c += 1

    cells = _mark_totals(cells, d)
    checks = (
        CheckSpec(
            T3_SHEET,
            _a1(1, t3_last_row + 2),
            tuple(
                (f"R1.{col.key}", _a1(T3_FIRST_DATA_COL + j, t3_last_row + 2))
                for j, col in enumerate(col_leaves)
            ),
            _a1(T3_FIRST_DATA_COL + len(col_leaves), t3_last_row + 2),
        ),
        _t4_check(groups, ncols),
    )
    return tuple(cells), tuple(labels), checks, _fields(d)


def _t4_check(groups: list[tuple[Node, tuple[str, ...]]], ncols: int) -> CheckSpec:
    """Table 四's check: the label and the summary on the row under the data (leaving one empty row), one check
    cell per group on the row below, each under all the columns of its group (R5: its 总计 is a formula, so the
    check reads what the agency types — the group's results)."""
    label_row, check_row = T4_DATA_ROW + 2, T4_DATA_ROW + 3
    summary_width = len(groups[-1][0].children)
    refs, spans, c = [], [], 1
    for g, _ in groups:
        refs.append((f"R5.{g.key}", _a1(c, check_row)))
        spans.append(_a1(c + len(g.children) - 1, check_row))
        c += len(g.children)
    return CheckSpec(T4_SHEET, _a1(1, label_row), tuple(refs), _a1(ncols - summary_width + 1, label_row),
                     spans=tuple(spans), label_to=_a1(ncols - summary_width, label_row),
                     summary_to=_a1(ncols, label_row))


def _t4_leaf_groups(d: Definition | None = None) -> list[tuple[Node, tuple[str, ...]]]:
    """The groups of table 四 whose children are results, with their enclosing labels (of the current format
    without ``d``)."""
    d = d or current().definition
    out: list[tuple[Node, tuple[str, ...]]] = []
    for top in d.t4_groups:
        if top.children[0].is_group:
            out.extend((sub, (top.label,)) for sub in top.children)
        else:
            out.append((top, ()))
    return out


def _mark_totals(cells: list[CellSpec], d: Definition) -> list[CellSpec]:
    """Mark computed cells and their addends from the trees' ``total_of`` markers."""
    by_table: dict[str, dict[tuple[str, str], CellSpec]] = {}
    for c in cells:
        by_table.setdefault(c.table, {})[(c.row_key, c.column_key)] = c
    addends: dict[str, tuple[str, ...]] = {}

    t3 = by_table["三"]
    row_total, row_parts = _total_and_parts(d.t3_rows)
    col_total, col_parts = _total_and_parts(d.t3_columns)
    row_keys = [leaf.key for top in d.t3_rows for leaf in top.leaves()]
    col_keys = [leaf.key for top in d.t3_columns for leaf in top.leaves()]
    for rk in row_keys:  # 总计 column: sum of the applicant columns
        addends[t3[(rk, col_total)].name] = tuple(t3[(rk, ck)].name for ck in col_parts)
    for ck in col_keys:  # （七）总计 row: sum of the result rows (the corner cell sums its row instead)
        if ck != col_total:
            addends[t3[(row_total, ck)].name] = tuple(t3[(rk, ck)].name for rk in row_parts)

    t4 = by_table["四"]
    for group, _ in _t4_leaf_groups(d):
        total, parts = _total_and_parts(group.children)
        addends[t4[(group.key, total)].name] = tuple(t4[(group.key, p)].name for p in parts)

    from dataclasses import replace

    ref = {c.name: c.ref for c in cells}
    return [replace(c, computed=True, addends=addends[c.name], addend_refs=tuple(ref[a] for a in addends[c.name]))
            if c.name in addends else c for c in cells]


def _total_and_parts(nodes: tuple[Node, ...]) -> tuple[str, list[str]]:
    """The key of the total leaf among ``nodes`` (searching groups) and the leaves it sums."""

    def find(ns: tuple[Node, ...]) -> tuple[Node, tuple[Node, ...]] | None:
        for n in ns:
            if n.total_of is not None:
                return n, ns
            if n.children:
                hit = find(n.children)
                if hit:
                    return hit
        return None

    hit = find(nodes)
    assert hit, "no total in tree"
    total, siblings = hit
    if total.total_of == "*":
        scope: tuple[Node, ...] = siblings
    else:
        scope = next(n for n in _walk(nodes) if n.key == total.total_of).children
    parts = [leaf.key for n in scope for leaf in n.leaves() if leaf.key != total.key]
    return total.key, parts


def _walk(nodes: tuple[Node, ...]) -> Iterator[Node]:
    for n in nodes:
        yield n
        yield from _walk(n.children)


# --------------------------------------------------------------------------------------------------
# Cover, text and fee fields


def _fields(d: Definition) -> tuple[FieldSpec, ...]:
    out: list[FieldSpec] = []
    # (key, label, kind, prefilled, required, hint). Required: who the report is (name, code, year, category), who
    # to ask about it (编制科室, 联系电话, 填报人) and when it was filled; the address, postcode and reviewer are
    # optional, and where the report will be published is often not known when the workbook is returned.
    info = [
        ("agency_name", "单位名称", "text", True, True, "与本单位公章名称一致，如：示例县财政局"),
        ("agency_code", "单位代码", "text", True, True,
         "填县政务公开办单位名册中本单位的代码（预填报表已填好并锁定）；不清楚的请向县政务公开办查询"),
        ("report_year", "报告年度", "year", True, True, "统计期限为该年1月1日至12月31日"),
        ("category", "单位类别", "choice", True, True, "本级 / 县直部门 / 乡镇（街道）"),
        ("contact_office", "编制科室", "text", False, True, "负责编制年报、受理咨询的科室，如：示例县财政局办公室"),
        ("address", "联系地址", "text", False, False, ""),
        ("postcode", "邮政编码", "text", False, False, "6位数字"),
        ("phone", "联系电话", "text", False, True, "含区号，如：0469-4914003"),
        ("publish_channel", "年报发布栏目", "text", False, False,
         "如：示例县政府网-政府信息公开平台-政府信息公开年报专栏"),
        ("publish_url", "年报发布网址", "text", False, False, "以 http:// 或 https:// 开头"),
        ("preparer", "填报人", "text", False, True, ""),
        ("reviewer", "审核人", "text", False, False, "本单位分管负责人"),
        ("fill_date", "填报日期", "date", False, True, "如：2025-01-15"),
    ]
    #: The fields a workbook's agency is identified by (read.identify): empty, they are 错误, not 提示.
    identifying = {"agency_name", "agency_code"}
    for i, (key, label, kind, prefilled, required, hint) in enumerate(info):
        out.append(
            FieldSpec(
                name=f"INFO_{key}",
                key=key,
                label=label,
                sheet=SHEET_INFO,
                ref=_a1(2, INFO_FIRST_ROW + i),
                kind=kind,  # type: ignore[arg-type]
                required=required,
                identifies=key in identifying,
                prefilled=prefilled,
                choices=CATEGORY_LABELS if key == "category" else (),
                hint=hint,
            )
        )

    def texts(section: str, items: list[tuple[str, str, str, bool]], kinds: dict[str, Kind] | None = None):
        sheet = SECTION[section].sheet
        for i, (key, label, hint, required) in enumerate(items):
            kind = (kinds or {}).get(key, "text")
            out.append(
                FieldSpec(
                    name=f"TXT_{key}" if kind == "text" else f"FEE_{key}",
                    key=key,
                    label=label,
                    sheet=sheet,
                    ref=_a1(2, TEXT_FIRST_ROW + i),
                    kind=kind,
                    section=section,
                    required=required,
                    choices=(YES, NO) if kind == "choice" else (),
                    hint=hint,
                    unit=unit_of(label, kind),
                )
            )

    texts(
        "一",
        [
            ("overview", "概述", "总体情况的开篇段落；本部分合计原则上不超过1000字", True),
            ("proactive", "主动公开情况", "本年主动公开政府信息的重点内容、渠道和数量；文中写到的数字应与表二一致", True),
            ("on_request", "依申请公开情况",
             "本年收到和办理政府信息公开申请的情况；文中写到的件数应与表三一致，并写明“收到”是否含上年结转", True),
            ("management", "政府信息管理", "公开属性认定、发布前审查、政策解读、行政规范性文件清理等管理情况", True),
            ("platform", "政府信息公开平台建设情况", "政府网站、政府信息公开专栏、政务新媒体等公开平台的建设和维护情况",
             True),
            ("oversight", "监督保障情况", "政府部门含工作考核、社会评议和责任追究结果情况", True),
        ],
    )
    texts(
        "五",
        [
            ("problems", "存在的问题", "实事求是、具体明确，不得与往年雷同", True),
            ("improvements", "改进措施", "针对问题提出切实可行的改进措施", True),
        ],
    )
    texts(
        "六",
        [
            ("fee_charged", "本年是否收取信息处理费", "按《政府信息公开信息处理费管理办法》填“是”或“否”", True),
            ("fee_notices", "发出收费通知件数", "件", False),
            ("fee_notice_amount", "收费通知金额（元）", "元", False),
            ("fee_collected", "实际收取金额（元）", "元", False),
            ("fee_note", "信息处理费情况说明", "如：本年度未收取信息处理费。", False),
            ("other_matters", "其他需要报告的事项", "无其他事项的填“无。”", True),
        ],
        kinds={"fee_charged": "choice", "fee_notices": "count", "fee_notice_amount": "money",
               "fee_collected": "money"},
    )
    out.append(
        FieldSpec(
            name="META_format_version",
            key="format_version",
            label="格式版本",
            sheet=SHEET_INFO,
            ref=_a1(2, INFO_FIRST_ROW + len(info) + 1),
            kind="text",
            prefilled=True,
            hint=f"{d.document}，请勿修改",
        )
    )
    return tuple(out)


INFO_FIRST_ROW = 3  # 基本信息: row 1 title, row 2 header (项目 | 填写内容 | 说明)
TEXT_FIRST_ROW = 3  # text sheets: row 1 heading, row 2 header

#: Names of the reference cells (last year's 现行有效件数) shown beside table 二; not input, not read as data.
T2_REFERENCE_NAMES = {
    "T2_regulations_in_force": "REF_regulations_in_force_last_year",
    "T2_normative_documents_in_force": "REF_normative_documents_in_force_last_year",
}

# --------------------------------------------------------------------------------------------------
# Rules R1–R5 (agency) and R6/R8 (cross-year), generated from the trees


def _rules(f: Format) -> tuple[Rule, ...]:
    d = f.definition
    rules: list[Rule] = []
    cell_at = f._cell_by_key

    # R1: per column, Σ rows flowing in = Σ rows flowing out (一+二 = （七）+四)
    rows_in = [n for n in _walk(d.t3_rows) if n.flow == "in"]
    rows_out = [n for n in _walk(d.t3_rows) if n.flow == "out"]
    col_leaves = [leaf for top in d.t3_columns for leaf in top.leaves()]
    for col in col_leaves:
        rules.append(
            Rule(
                "R1",
                f"R1.{col.key}",
                "三",
                f"表三“{col.label}”列：{R1_STATEMENT}",
                tuple(cell_at[("三", r.key, col.key)] for r in rows_in),
                tuple(cell_at[("三", r.key, col.key)] for r in rows_out),
            )
        )
    # R2 / R3 / R5: every computed cell equals the sum of its addends
    col_total = next(leaf for leaf in col_leaves if leaf.total_of)
    row_total_node = next(n for n in _walk(d.t3_rows) if n.total_of)
    t4_total = next(r for r in d.t4_results if r.total_of)
    t4_parts = "、".join(r.label for r in d.t4_results if r is not t4_total)
    for c in f.CELLS:
        if not c.computed:
            continue
        if c.table == "三" and c.column_key == col_total.key:
            rid, title = "R2", f"表三“{clip(c.row, RULE_TITLE_LABEL_CHARS)}”行：{col_total.label}等于各类申请人之和"
        elif c.table == "三":
            rid, title = "R3", f"表三“{c.column}”列：{row_total_node.label}等于各项办理结果之和"
        else:
            rid, title = "R5", f"表四“{c.row}”：{t4_total.label}等于{t4_parts}之和"
        key = f"{rid}.{c.row_key}" if rid != "R3" else f"R3.{c.column_key}"
        rules.append(Rule(rid, key, c.table, title, (c.name,), c.addends))
    # R3 for the corner cell (（七）总计 × 总计) too: its formula sums the row, R3 checks the column
    row_total, row_parts = _total_and_parts(d.t3_rows)
    rules.append(
        Rule(
            "R3",
            "R3.total",
            "三",
            f"表三“{col_total.label}”列：{row_total_node.label}等于各项办理结果之和",
            (cell_at[("三", row_total, "total")],),
            tuple(cell_at[("三", rk, "total")] for rk in row_parts),
        )
    )
    # R8: this year's 上年结转 = last year's 结转下年度 (lhs this year, rhs last year)
    carried_in, carried_over = (next(n for n in _walk(d.t3_rows) if n.key == k) for k in ("carried_in", "carried_over"))
    for col in col_leaves:
        rules.append(
            Rule(
                "R8",
                f"R8.{col.key}",
                "三",
                f"表三“{col.label}”列：本年“{carried_in.number}{carried_in.short}”应等于上年报告“{carried_over.label}”",
                (cell_at[("三", "carried_in", col.key)],),
                (),
                last_year=(cell_at[("三", "carried_over", col.key)],),
                scope="cross_year",
            )
        )
    # R6: last year's 现行有效 + 本年制发 − 本年废止 = 本年现行有效 (soft)
    t2_cols = {c.key: c.label for c in d.t2_blocks[0].columns}
    for row in d.t2_blocks[0].rows:
        rules.append(
            Rule(
                "R6",
                f"R6.{row.key}",
                "二",
                f"表二“{row.label}”：上年{t2_cols['in_force']} + {t2_cols['issued']} − {t2_cols['repealed']} = "
                f"本年{t2_cols['in_force']}",
                (f.cell_name("二", row.key, "in_force"),),
                (f.cell_name("二", row.key, "issued"),),
                minus=(f.cell_name("二", row.key, "repealed"),),
                last_year=(f.cell_name("二", row.key, "in_force"),),
                scope="cross_year",
                severity="warning",
            )
        )
    return tuple(rules)


#: Long row labels are clipped to this many characters in rule titles (表三“…”行：…) …
RULE_TITLE_LABEL_CHARS = 16
#: … and to this many where a message names a cell (表三“…”·“总计”) or a rule's terms.
MESSAGE_LABEL_CHARS = 18


def clip(label: str, chars: int = MESSAGE_LABEL_CHARS) -> str:
    """A label short enough for a message: cut after ``chars`` characters, with an ellipsis."""
    return label if len(label) <= chars else label[:chars] + "…"


# --------------------------------------------------------------------------------------------------
# Plausibility checks (R9, R11, （六）3.其他), generated per format (the numbers texts quote, R10: CLAIM_VOCABULARY)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class PlausibilityCheck:
    """A soft check across one workbook's cells (and fields), as data: what it reads, its thresholds, the
    finding it reports (``code``) with its severity, and ``label``, the checked row as the message names it.

    - R9: ``cells[0]`` (（六）2 总计) above 0 means fee notices were sent: ``fields[0]`` (本年是否收取信息处理费)
      should be YES and ``fields[1]`` (发出收费通知件数) at least that count.
    - R11: every one of ``cells`` (the 规章 row) is 0 (county bodies make no 规章).
    - OTHER_HIGH: ``cells[0]`` (（六）3.其他 总计) is high when it is at least ``min_count`` and more than
      ``max_share`` of ``cells[1]`` (（七）总计 总计).
    """

    key: str
    code: str
    label: str
    cells: tuple[str, ...]
    fields: tuple[str, ...] = ()
    severity: Severity = "warning"
    min_count: int = 0
    max_share: float = 0.0


def _parent(nodes: tuple[Node, ...], key: str) -> Node | None:
    """The group whose child has ``key`` (None at the top)."""
    for n in _walk(nodes):
        if any(c.key == key for c in n.children):
            return n
    return None


def _plausibility_checks(f: Format) -> tuple[PlausibilityCheck, ...]:
    d = f.definition
    t3_total = next(leaf for top in d.t3_columns for leaf in top.leaves() if leaf.total_of).key
    row_total = next(n for n in _walk(d.t3_rows) if n.total_of).key
    fee, other = f.row_node("三", "other_fee_unpaid"), f.row_node("三", "other_other")
    regulations = f.row_node("二", "regulations")
    return (
        PlausibilityCheck(
            "R9", "R9_FEE", f"{_parent(d.t3_rows, fee.key).number}{fee.number}{fee.brief}",
            (f.cell_name("三", fee.key, t3_total),), fields=("FEE_fee_charged", "FEE_fee_notices"),
        ),
        PlausibilityCheck(
            "R11", "R11_REGULATIONS", regulations.label,
            tuple(c.name for c in f.CELLS if c.table == "二" and c.row_key == regulations.key),
        ),
        PlausibilityCheck(
            "OTHER_HIGH", "OTHER_HIGH", f"{_parent(d.t3_rows, other.key).label} {other.label}",
            (f.cell_name("三", other.key, t3_total), f.cell_name("三", row_total, t3_total)),
            min_count=5, max_share=0.3,
        ),
    )


def _severities(f: Format) -> dict[str, Severity]:
    """The severity of each finding code the format's rules and checks report (the findings registry reads it)."""
    out: dict[str, Severity] = {}
    for code, severity in ([(r.id, r.severity) for r in f.RULES] + [(c.code, c.severity) for c in f.PLAUSIBILITY_CHECKS]
                           + [(f.CLAIM_VOCABULARY.code, f.CLAIM_VOCABULARY.severity)]):
        if out.setdefault(code, severity) != severity:
            raise AssertionError(f"{code}: one finding code, two severities")
    return out


def _message_labels(f: Format) -> dict[str, str]:
    """The labels finding messages name (``{L.carried_in}`` in a template of pipeline/findings.py), derived from
    the format's trees, sections and fields."""
    d = f.definition
    row, col = f.row_node, f.column_node
    carried_in, carried_over = row("三", "carried_in"), row("三", "carried_over")
    other = row("三", "other_other")
    categories = {c.key: c.label for c in CATEGORIES}
    overview = SECTION[f.FIELD["TXT_overview"].section]
    return {
        "r1": R1_STATEMENT,
        "carried_in": f"{carried_in.number}{carried_in.short}",
        "carried_in_short": carried_in.short,
        "carried_over": carried_over.label,
        "carried_over_short": carried_over.short,
        "row_total": next(n for n in _walk(d.t3_rows) if n.total_of).label,
        "t3_total": next(leaf for top in d.t3_columns for leaf in top.leaves() if leaf.total_of).label,
        "t4_total": next(r for r in d.t4_results if r.total_of).label,
        "in_force": col("二", "in_force").label,
        "in_force_short": col("二", "in_force").short,
        "issued_short": col("二", "issued").short,
        "repealed_short": col("二", "repealed").short,
        "regulations": f.PLAUSIBILITY["R11"].label,
        "normative_documents": row("二", "normative_documents").label,
        "department": categories["department"],
        "township": categories["township"],
        "fee_row": f.PLAUSIBILITY["R9"].label,
        "fee_section": f.FIELD["FEE_fee_charged"].section or "",
        "other_row": f.PLAUSIBILITY["OTHER_HIGH"].label,
        "other_row_short": f"{_parent(d.t3_rows, other.key).number}{other.label}",
        "overview": overview.heading,
        "overview_title": overview.title,
        "money_unit": next(c.unit for c in f.CELLS if c.kind == "money"),
        "money_max_decimals": str(MONEY_MAX_DECIMALS),
        "format_document": f.FORMAT_DOCUMENT,
        "old_format_document": OLD_FORMAT_DOCUMENT,
        "format_version": f.FIELD["META_format_version"].label,
        "report_year": f.FIELD["INFO_report_year"].label,
        "agency_code": f.FIELD["INFO_agency_code"].label,
        "agency_name": f.FIELD["INFO_agency_name"].label,
        "info_sheet": SHEET_INFO,
    }


def defined_name_formula(sheet: str, ref: str) -> str:
    """The attr_text of a workbook-level defined name: 'Sheet'!$B$4."""
    col, row = _split_ref(ref)
    return f"{quote_sheetname(sheet)}!${get_column_letter(col)}${row}"


# --------------------------------------------------------------------------------------------------
# Label normalisation and the 2019 试行 format (FORMAT-2021.md §9, §10)

_SPACE = re.compile(r"\s+")


def normalise_label(text: object) -> str:
    """Compare labels as people type them: NFKC (full-width → half-width), no whitespace, unified quotes."""
    s = unicodedata.normalize("NFKC", str(text or ""))
    s = _SPACE.sub("", s)
    return s.replace('"', "“").replace("'", "‘").replace("”", "“").replace("’", "‘")


#: Headers that only the 2019 试行 format (国办公开办函〔2019〕60号) has, with nothing like them in 2021
#: (FORMAT-2021.md §9): table 二's （一） columns, （五）/（六）/（八）'s columns and extra row, the （九） block.
OLD_FORMAT_HEADERS: tuple[str, ...] = (
    "本年新制作数量",
    "本年新公开数量",
    "对外公开总数量",
    "上一年项目数量",
    "本年增/减",
    "其他对外管理服务事项",
    "第二十条第（九）项",
    "政府集中采购",
    "采购项目数量",
    "采购总金额",
)
#: Labels of the 2019 format that are also a small edit of a 2021 label (a real 2021 report prints “规范性文件”
#: for 行政规范性文件): evidence only beside 2019 headers, never on their own.
OLD_FORMAT_VARIANTS: tuple[str, ...] = (
    "规范性文件",
    "处理决定数量",  # 2021 says 本年处理决定数量; checked as a whole label, not a substring
)
#: Every string of the 2019 format that 2021 does not have.
OLD_FORMAT_MARKERS: tuple[str, ...] = OLD_FORMAT_HEADERS + OLD_FORMAT_VARIANTS
#: A workbook is taken for the 2019 layout when it shows at least this many distinct 2019 labels, at least
#: OLD_FORMAT_MIN_HEADERS of them headers 2021 has nothing like (one stray label or typo is never enough).
OLD_FORMAT_MIN_LABELS = 3
OLD_FORMAT_MIN_HEADERS = 2
OLD_FORMAT_DOCUMENT = "国办公开办函〔2019〕60号"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two labels (short strings): how far a typed label is from the format's."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def is_old_format_label(text: object) -> bool:
    """True when a cell's text is a label of the 2019 format and not of the 2021 one."""
    return old_format_evidence(text) is not None


def old_format_evidence(text: object) -> Literal["header", "variant"] | None:
    """What a cell's text says of the 2019 format: "header" (a header only 2019 has), "variant" (a 2019 label
    that is also a near-miss of a 2021 one), None (neither)."""
    t = normalise_label(text)
    if not t:
        return None
    if t in _OLD_HEADERS:
        return "header"
    if t in _OLD_VARIANTS:
        return "variant"
    return None


def is_old_format(labels: Iterable[object]) -> bool:
    """True when the distinct labels found are evidence enough of the 2019 layout (OLD_FORMAT_MIN_LABELS,
    OLD_FORMAT_MIN_HEADERS)."""
    seen = {normalise_label(t): old_format_evidence(t) for t in labels}
    seen = {t: kind for t, kind in seen.items() if kind is not None}
    headers = sum(1 for kind in seen.values() if kind == "header")
    return headers >= OLD_FORMAT_MIN_HEADERS and len(seen) >= OLD_FORMAT_MIN_LABELS


_OLD_HEADERS = frozenset(normalise_label(m) for m in OLD_FORMAT_HEADERS)
_OLD_VARIANTS = frozenset(normalise_label(m) for m in OLD_FORMAT_VARIANTS)


# --------------------------------------------------------------------------------------------------
# Machine-readable export (``nianbao spec --json``)


# --------------------------------------------------------------------------------------------------
# County summary: key figures, annex labels (used by aggregate.py, render.py, county_xlsx.py)


@dataclass(frozen=True)
class KeyFigure:
    """A figure of the per-agency breakdown and the year-on-year table: the sum of some spec cells."""

    key: str
    label: str
    cells: tuple[str, ...]
    kind: Literal["count", "money"] = "count"


def _key_figures(f: Format) -> tuple[KeyFigure, ...]:
    d = f.definition

    def _t3_total(*row_keys: str) -> tuple[str, ...]:
        """The 总计-column cells of the leaves under the given table 三 row keys (groups expand to their leaves)."""
        nodes = {n.key: n for n in _walk(d.t3_rows)}
        return tuple(cell_name("三", leaf.key, "total") for k in row_keys for leaf in nodes[k].leaves())

    cell_name = f.cell_name
    return (
        KeyFigure("new", "新收申请", _t3_total("new")),
        KeyFigure("granted", "予以公开", _t3_total("granted")),
        KeyFigure("partial", "部分公开", _t3_total("partial")),
        KeyFigure("withheld", "不予公开", _t3_total("withheld")),
        KeyFigure("unavailable", "无法提供", _t3_total("unavailable")),
        KeyFigure("not_processed", "不予处理", _t3_total("not_processed")),
        KeyFigure("other_handling", "其他处理", _t3_total("other_handling")),
        KeyFigure("carried_over", "结转下年度", _t3_total("carried_over")),
        KeyFigure("reconsideration", "行政复议", (cell_name("四", "reconsideration", "total"),)),
        KeyFigure("reconsideration_corrected", "复议纠正", (cell_name("四", "reconsideration", "corrected"),)),
        KeyFigure(
            "litigation",
            "行政诉讼",
            (cell_name("四", "litigation_direct", "total"), cell_name("四", "litigation_after", "total")),
        ),
        KeyFigure(
            "litigation_corrected",
            "诉讼纠正",
            (cell_name("四", "litigation_direct", "corrected"), cell_name("四", "litigation_after", "corrected")),
        ),
    )


#: The 办理结果 figures among KEY_FIGURES (the outcome mix of the county summary).
OUTCOME_KEYS: tuple[str, ...] = ("granted", "partial", "withheld", "unavailable", "not_processed", "other_handling")
#: Table 二 cells also compared year on year (主动公开).
YOY_T2_CELLS: tuple[str, ...] = (
    "T2_normative_documents_issued",
    "T2_normative_documents_repealed",
    "T2_normative_documents_in_force",
    "T2_licensing_decisions",
    "T2_penalties_decisions",
    "T2_enforcement_decisions",
    "T2_fees_amount",
)

#: Labels of the county summary's annexes and of 全县汇总.xlsx.
SUMMARY_LABELS: dict[str, str] = {
    "agency": "单位名称",
    "code": "单位代码",
    "category": "单位类别",
    "agency_count": "单位数",
    "total_row": "合计",
    "item": "项目",
    "current": "本年",
    "previous": "上年",
    "change": "增减",
    "rate": "增减幅度",
    "status": "报送情况",
    "roster": "名册单位",
    "submitted": "已报送",
    "passed": "校验通过",
    "failed": "未通过校验",
    "missing": "未报送",
    "not_in_roster": "不在名册",
    "unattributed": "代码与名称不符",
    "annex": "附件",
    "annex_breakdown": "各单位主要数据",
    "annex_categories": "分类汇总",
    "annex_yoy": "主要数据同比",
    "yoy_scope": "同比口径",
    "annex_completeness": "报送情况",
    "annex_charts": "统计图",
    "chart_applications": "各单位新收政府信息公开申请数量",
    "chart_outcomes": "全县政府信息公开申请办理结果构成",
    "chart_yoy": "主要数据同比情况",
    "draft": "草稿",
    "sheet_tables": "全县汇总表",
    "sheet_breakdown": "各单位明细",
    "sheet_yoy": "同比",
    "sheet_completeness": "报送情况",
    "table_column": "表",
    "unit_pieces": "件",
    "unit_agencies": "个",  # the unit of 单位数
    "unit": "计量单位",  # the column of the year-on-year annex (件 / 万元 by row)
    "figure": "图",  # a figure's number: 图1
    "county_summary": "全县汇总",  # the county summary's title and file name say it: （全县汇总）
}


# --------------------------------------------------------------------------------------------------
# Template support (added for pipeline/template.py; additive only)

#: The header row (row 2) of the 基本信息 and text/fee sheets: label | input | hint.
FIELD_TABLE_HEADER: tuple[str, str, str] = ("项目", "填写内容", "说明")
#: The summary cell of a CheckSpec shows one of these.
CHECK_SUMMARY_OK = "全部通过"
CHECK_SUMMARY_FAIL = "有误"
#: 本年收费金额 (万元) is kept to at most this many decimals.
MONEY_MAX_DECIMALS = 4
#: Custom document properties of the template (a second place, besides META_/INFO_ names, to find them).
DOC_PROPERTY_FORMAT_VERSION = "nianbao_format_version"
DOC_PROPERTY_FORMAT_DOCUMENT = "nianbao_format_document"
DOC_PROPERTY_REPORT_YEAR = "nianbao_report_year"
DOC_PROPERTY_AGENCY_CODE = "nianbao_agency_code"


def _rule_summaries(f: Format) -> dict[str, str]:
    """One Chinese sentence per rule number (R1–R6, R8–R11; the numbering of FORMAT-2021.md, which has no R7),
    built from the table trees, the fields and the plausibility checks."""
    d = f.definition
    rows_in = [n for n in _walk(d.t3_rows) if n.flow == "in"]
    rows_out = [n for n in _walk(d.t3_rows) if n.flow == "out"]
    col_leaves = [leaf for top in d.t3_columns for leaf in top.leaves()]
    total_col = next(c for c in col_leaves if c.total_of)
    parts = [c for c in col_leaves if c is not total_col]
    row_total = next(n for n in _walk(d.t3_rows) if n.total_of)
    results = next(n for n in _walk(d.t3_rows) if n.key == row_total.total_of)
    t4_groups = [g for g, _ in _t4_leaf_groups(d)]
    t4_total = next(r for r in d.t4_results if r.total_of)
    t4_parts = [r for r in d.t4_results if r is not t4_total]
    t2_cols = d.t2_blocks[0].columns
    carried_in = next(n for n in rows_in if n.key == "carried_in")
    carried_over = next(n for n in rows_out if n.key == "carried_over")
    fee = f.PLAUSIBILITY["R9"]
    fee_section = f.FIELD[fee.fields[0]].section
    regulations = f.PLAUSIBILITY["R11"]
    categories = {c.key: c.label for c in CATEGORIES}
    text_sections = [s.number for s in SECTIONS if any(x.kind == "text" for x in f.fields(section=s.number))]

    def q(nodes) -> str:
        return "、".join(f"“{n.label}”" for n in nodes)

    return {
        "R1": f"表三每一列：{q(rows_in)}之和，等于{q(rows_out)}之和。",
        "R2": f"表三每一行：“{total_col.label}”等于{q(parts)}之和。",
        "R3": f"表三每一列：“{row_total.label}”等于“{results.label}”下各项办理结果之和。",
        "R4": f"所有件数为不小于0的整数；“{d.t2_blocks[-1].columns[0].label}”为不小于0的金额，"
        f"最多保留{MONEY_MAX_DECIMALS}位小数。",
        "R5": f"表四{q(t4_groups)}：“{t4_total.label}”等于{q(t4_parts)}之和。",
        "R6": f"表二{q(d.t2_blocks[0].rows)}：上年“{t2_cols[2].label}”加“{t2_cols[0].label}”减“{t2_cols[1].label}”，"
        f"应等于本年“{t2_cols[2].label}”（提示性核对）。",
        "R8": f"表三每一列：本年“{carried_in.label}”应等于上年报告“{carried_over.label}”。",
        "R9": f"表三“{fee.label}”的“{total_col.label}”大于0的（发出过收费通知），第{fee_section}部分"
        f"“{f.FIELD['FEE_fee_charged'].label}”应填“{YES}”，“{f.FIELD['FEE_fee_notices'].label}”不少于该数。",
        "R10": f"第{'、'.join(text_sections)}部分文字中写到的件数应与表格一致"
        f"（如{q([next(k for k in f.KEY_FIGURES if k.key == 'new')] + list(d.t4_groups))}的件数）。",
        "R11": f"表二“{regulations.label}”行：{categories['department']}和{categories['township']}没有规章制定权，"
        f"此行一般应为0。",
    }


def _as_json(f: Format) -> dict:
    return {
        "format_version": f.FORMAT_VERSION,
        "format_document": f.FORMAT_DOCUMENT,
        "sections": [{"number": s.number, "title": s.title, "heading": s.heading, "sheet": s.sheet} for s in SECTIONS],
        "categories": list(CATEGORY_LABELS),
        "cells": [
            {
                "table": c.table,
                "row": c.row,
                "column": c.column,
                "row_path": list(c.row_path),
                "sheet": c.sheet,
                "cell": c.ref,
                "name": c.name,
                "kind": c.kind,
                "unit": c.unit,
                "computed": c.computed,
                **({"formula": c.formula()} if c.computed else {}),
            }
            for c in f.CELLS
        ],
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "sheet": f.sheet,
                "cell": f.ref,
                "kind": f.kind,
                **({"unit": f.unit} if f.unit else {}),
                "section": f.section,
                "required": f.required,
                **({"identifies": True} if f.identifies else {}),
                **({"choices": list(f.choices)} if f.choices else {}),
            }
            for f in f.FIELDS
        ],
        "rules": [
            {
                "id": r.id,
                "key": r.key,
                "table": r.table,
                "title": r.title,
                "lhs": list(r.lhs),
                "rhs": list(r.rhs),
                "minus": list(r.minus),
                "last_year": list(r.last_year),
                "scope": r.scope,
                "severity": r.severity,
            }
            for r in f.RULES
        ],
    }


# --------------------------------------------------------------------------------------------------
# What report texts say about the tables (R10): the wording of real reports, bound to cells.
# pipeline/claims.py reads texts with it; tests/fixtures/text_claims/corpus.jsonl is its test.


@dataclass(frozen=True)
class ClaimSlot:
    """What a number counts within a topic: words that name it, what the message calls it, and the admissible
    readings (sums of cells; the text may mean any of them)."""

    key: str
    what: str
    words: tuple[str, ...]
    readings: tuple[tuple[str, ...], ...]
    rank: int = 0  # of two slots named before one number the higher wins (不予公开 over 收到, 国家秘密 over 不予公开)
    within: str = ""  # the slot this one is a part of (1.属于国家秘密 within （三）不予公开)


@dataclass(frozen=True)
class ClaimTopic:
    """A subject a text talks about (依申请公开 requests, 行政复议, 规章 …): the words that name it, its slots, and
    the slot a number right after the topic's own noun means (``bare``: what may stand between, a regex)."""

    key: str
    words: tuple[str, ...]
    slots: tuple[ClaimSlot, ...]
    default: ClaimSlot | None = None
    bare: str = ""
    nouns: tuple[str, ...] = ()  # words that stand for the topic right before a number (案件)
    within: str = ""  # the topic this one is a part of (直接起诉 within 行政诉讼)


@dataclass(frozen=True)
class ClaimVocabulary:
    topics: tuple[ClaimTopic, ...]
    not_a_topic: tuple[str, ...]  # words after which numbers are about something else (公文 by 公开属性, 信息处理费)
    delta_words: tuple[str, ...]  # a number after these is a change, not a figure (较上年增加5件)
    share_words: tuple[str, ...]  # 占 N%: a share of the count just named
    share_of: tuple[tuple[str, ...], ...]  # what a share may be of
    rates: tuple[ClaimSlot, ...]  # N% that are rates of their own (办结率)
    rate_of: tuple[tuple[str, ...], ...]
    publishing: tuple[str, ...]  # words of such a list
    published: tuple[str, ...]  # topics whose bare number counts only in a list of what was published (主动公开…)
    modifiers: tuple[str, ...]  # after a slot word, these make it describe the noun (法人提出的申请21件: not 法人's count)
    money_topics: tuple[str, ...]  # topics whose numbers are amounts (万元)
    together: tuple[str, ...]  # 均为: several slots named before one number share it; after it, the number's parts
    respectively: tuple[str, ...]  # 占比分别为 a%和b%: shares of the counts just named, in order
    summing: tuple[str, ...]  # 合计 N 件 after several counts: their sum
    none_words: tuple[str, ...] = ()  # 未收到(任何)申请: the text says there were none of the first topic …
    none_slot: ClaimSlot | None = None  # … a claim of 0 for this slot
    code: str = "TEXT_NUMBER_MISMATCH"  # the finding a number that matches none of its readings gives …
    severity: Severity = "warning"  # … and its severity


#: Words of the request counts and of each outcome row of 表三, beyond the row's own label.
_T3_ROW_WORDS: dict[str, tuple[str, ...]] = {
    "granted": ("予以公开", "同意公开", "公开答复", "全部公开", "准予公开"),
    "partial": ("部分公开", "区分处理后公开", "区分处理"),
    "withheld": ("不予公开",),
    "withheld_secret": ("国家秘密",),
    "withheld_prohibited": ("法律行政法规禁止公开", "禁止公开"),
    "withheld_security": ("三安全一稳定",),
    "withheld_third_party": ("第三方合法权益",),
    "withheld_internal": ("内部事务信息", "内部事务"),
    "withheld_process": ("过程性信息",),
    "withheld_enforcement_file": ("行政执法案卷", "执法案卷"),
    "withheld_inquiry": ("行政查询事项", "查询事项"),
    "unavailable": ("无法提供",),
    "unavailable_not_held": ("不掌握",),
    "unavailable_needs_creation": ("另行制作",),
    "unavailable_unclear": ("仍不明确",),
    "not_processed": ("不予处理",),
    "not_processed_petition": ("信访举报投诉",),
    "not_processed_repeat": ("重复申请",),
    "not_processed_publication": ("公开出版物",),
    "not_processed_mass": ("大量反复申请",),
    "not_processed_confirmation": ("确认或重新出具",),
    "other_handling": ("其他处理", "其他方式处理"),
    "other_no_correction": ("逾期不补正", "不补正"),
    "other_fee_unpaid": ("缴纳费用", "未缴费", "逾期未缴纳", "未缴纳信息处理费"),
    "other_other": ("其他情形",),
}
_T3_COLUMN_WORDS: dict[str, tuple[str, ...]] = {
    "natural": ("自然人",),
    "organisations": ("法人或其他组织", "法人和其他组织", "法人及其他组织"),
    "business": ("商业企业",),
    "research": ("科研机构",),
    "nonprofit": ("社会公益组织", "公益组织"),
    "legal": ("法律服务机构",),
    "other": ("其他申请人", "其他"),
}
_T4_RESULT_WORDS: dict[str, tuple[str, ...]] = {
    "upheld": ("结果维持", "维持"),
    "corrected": ("结果纠正", "纠正", "纠错", "败诉"),
    "other": ("其他结果",),
    "pending": ("尚未审结", "未审结", "正在审理", "审理中"),
}
_QUANTIFIER = r"(?:政府信息)?(?:数量|总数|件数|数)?(?:共|共计|合计|累计|总计|总数)?(?:为|是|达|有)?"


def _claim_vocabulary(f: Format) -> ClaimVocabulary:
    d = f.definition
    cell = f.cell_name

    def leaves(nodes: tuple[Node, ...], key: str) -> tuple[str, ...]:
        node = next(n for n in _walk(nodes) if n.key == key)
        return tuple(n.key for n in node.leaves()) if node.is_group else (key,)

    def t3(rows: tuple[str, ...], cols: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(cell("三", r, c) for r in rows for c in cols)

    total_col = ("total",)
    new, carried_in = t3(("new",), total_col), t3(("carried_in",), total_col)
    done, carried_over = t3(("total",), total_col), t3(("carried_over",), total_col)
    row_label = {n.key: n.label for n in _walk(d.t3_rows)}
    col_label = {n.key: n.label for n in _walk(d.t3_columns)}

    app_slots = [
        ClaimSlot("new", row_label["new"], ("新收", "新增"), (new,)),
        ClaimSlot("received", "本年新收（或新收加上年结转）申请数",
                  ("收到", "受理", "接收", "接到", "提出", "共收"), (new, new + carried_in)),
        ClaimSlot("handled", "本年度办理结果总计", ("办结", "回应", "答复", "办理完毕", "已办理", "处理完毕"), (done,)),
        ClaimSlot("handled_any", "本年度办理结果总计（或新收申请数）", ("办理",), (done, new, new + carried_in)),
        ClaimSlot("carried_in", row_label["carried_in"],
                  ("上年结转", "结转上年", "上年度结转", "上一年度结转", "上年度遗留"), (carried_in,), 2),
        ClaimSlot("carried_over", row_label["carried_over"],
                  ("结转下年度继续办理", "结转下年度办理", "结转下年度", "结转下一年度", "结转下一年", "结转下年",
                   "结转至", "结转到", "转入下年度", "转下年度", "转下一", "顺延到下年度", "顺延至下年度"),
                  (carried_over,), 2),
    ]
    for key, words in _T3_COLUMN_WORDS.items():
        cols = leaves(d.t3_columns, key)
        app_slots.append(ClaimSlot(f"applicant_{key}", f"{col_label[key]}的本年新收申请数", words,
                                   (t3(("new",), cols), t3(("new", "carried_in"), cols)), 1))
    parent = {c.key: n.key for n in _walk(d.t3_rows) for c in n.children if n.key != "results"}
    for key, words in _T3_ROW_WORDS.items():
        if words:
            app_slots.append(ClaimSlot(key, row_label[key].lstrip("（一二三四五六七八九十）0123456789."),
                                       words, (t3(leaves(d.t3_rows, key), total_col),),
                                       3 if key in parent else 2, parent.get(key, "")))
    both = t3(leaves(d.t3_rows, "granted") + leaves(d.t3_rows, "partial"), total_col)
    app_slots.append(ClaimSlot("granted_or_partial", "予以公开和部分公开",
                               tuple(f"予以公开{j}部分公开" for j in ("及", "和", "与", "、", "或")), (both,), 2))
    for w, key in (("同意公开答复", "granted"), ("部分公开答复", "partial"), ("不予公开答复", "withheld")):
        app_slots.append(dataclasses.replace(next(x for x in app_slots if x.key == key), words=(w,)))
    application = ClaimTopic("application", ("申请", "依申请公开", "依申请信息公开", "政府信息公开申请", "公开申请",
                                             "未缴纳信息处理费"),
                             tuple(app_slots), app_slots[1], _QUANTIFIER)

    def t4(group: str) -> ClaimTopic:
        groups = {"reconsideration": ("reconsideration",), "litigation": ("litigation_direct", "litigation_after"),
                  "litigation_direct": ("litigation_direct",), "litigation_after": ("litigation_after",)}[group]
        label = {n.key: n.label for n in _walk(d.t4_groups)}
        slots = tuple(
            ClaimSlot(f"{group}_{res}", f"{label[group]}{label.get(res, res)}", words,
                      (tuple(cell("四", g, res) for g in groups),), 1)
            for res, words in _T4_RESULT_WORDS.items()
        )
        total = ClaimSlot(f"{group}_total", f"{label[group]}总计", ("总计", "共计", "合计"),
                          (tuple(cell("四", g, "total") for g in groups),))
        words = {"reconsideration": ("行政复议", "复议", "复议申请", "复议案件"),
                 "litigation": ("行政诉讼", "诉讼", "起诉"),
                 "litigation_direct": ("未经复议直接起诉", "直接起诉", "直接提起诉讼", "未经复议"),
                 "litigation_after": ("复议后起诉", "复议后提起诉讼", "经复议后起诉", "复议后")}[group]
        within = "litigation" if group in ("litigation_direct", "litigation_after") else ""
        return ClaimTopic(group, words, slots + (total,), total, r"(?:案件|案|事项)?" + _QUANTIFIER, ("案件", "案"),
                          within)

    both_t4 = tuple(cell("四", g, "total") for g in ("reconsideration", "litigation_direct", "litigation_after"))
    review_and_litigation = ClaimTopic(
        "review_and_litigation", tuple(f"行政复议{j}行政诉讼" for j in ("和", "、", "及", "与")) + ("复议和诉讼",),
        (), ClaimSlot("review_and_litigation_total", "行政复议和行政诉讼总计", (), (both_t4,)),
        r"(?:相关)?(?:案件|案)?" + _QUANTIFIER, ("案件", "案"))
    t4_topics = [t4(g) for g in ("reconsideration", "litigation", "litigation_direct", "litigation_after")]

    t2_topics, published = [], []
    for block in d.t2_blocks:
        for row in block.rows:
            if len(block.columns) > 1:  # 规章, 行政规范性文件: 制发 / 废止 / 现行有效
                words = {"issued": ("制发", "制定", "出台", "印发", "新制定", "发布"), "repealed": ("废止", "清理废止"),
                         "in_force": ("现行有效", "有效")}
                slots = tuple(ClaimSlot(f"{row.key}_{c.key}", f"{row.label}{c.label}", words[c.key],
                                        ((cell("二", row.key, c.key),),)) for c in block.columns)
                names = (row.label,) + ((row.label.removeprefix("行政"),) if row.label.startswith("行政") else ())
                # 主动公开规章22件: documents of a kind published in the year are the year's issued ones
                t2_topics.append(ClaimTopic(row.key, names, slots, slots[0], _QUANTIFIER))
                published.append(row.key)
            else:
                c = block.columns[0]
                slot = ClaimSlot(f"{row.key}_{c.key}", f"{row.label}{c.label.split('（')[0]}", (),
                                 ((cell("二", row.key, c.key),),))
                extra = ("收费金额",) if c.key in MONEY_COLUMNS else ()
                bare = r"(?:决定|处理决定|事项|措施|案件|本年收费金额|收费金额|金额)?" + _QUANTIFIER
                t2_topics.append(ClaimTopic(row.key, (row.label,) + extra, (), slot, bare))

    return ClaimVocabulary(
        topics=(application, review_and_litigation, *t4_topics, *t2_topics),
        not_a_topic=("公文", "信息数", "公开属性", "信息处理费", "申请事项涉及", "申请内容涉及", "主动公开",
                     "制发政府信息", "发布政府信息", "政务信息", "网络问政", "热线", "转办件", "网民留言", "留言",
                     # requests by how they were sent (no table cell), motions of deputies and committee members
                     "提交方式", "申请方式", "在线申请", "网上申请", "当面申请", "信函申请", "当面和信函申请",
                     "人大代表建议", "代表建议", "政协委员提案", "政协提案", "委员提案", "建议提案",
                     # the work around requests, not requests: 回应关切, 解读, 答复文书, items pushed, the section title
                     "回应关切", "政策解读", "解读", "答复文书", "推送", "转发", "各类信息", "类信息", "其他需要报告的事项",
                     "失效"),
        modifiers=("提出的", "提出"),
        delta_words=("增加", "减少", "增长", "下降", "上升", "同比", "较上年", "比上年", "持平"),
        share_words=("占比", "占", "比例", "比重"),
        share_of=(done, new, new + carried_in),
        rates=(ClaimSlot("completion_rate", "办结率", ("办结率",), (done,)),),
        rate_of=(new + carried_in, new),
        published=tuple(published),
        publishing=("主动公开", "发布政府信息", "公开"),
        money_topics=tuple(t.key for t in t2_topics if t.default is not None
                           and t.default.key.endswith(tuple(MONEY_COLUMNS))),
        together=("均为", "均是", "都是", "均属", "均"),
        respectively=("分别为", "分别占", "分别"),
        summing=("合计", "共计", "总计", "合共", "共"),
        none_words=("未收到", "没有收到", "未受理", "没有受理", "未接到", "未接收"),
        none_slot=app_slots[0],
    )


# --------------------------------------------------------------------------------------------------
# The format as a value


@dataclass(frozen=True, eq=False)
class Definition:
    """What a format revision declares: its identity and its table trees. Everything else — cells and their
    Excel positions, defined names, labels, check cells, rules, key figures, rule summaries — is derived from
    these by ``Format``."""

    version: str  # "2021"
    document: str  # 国办公开办函〔2021〕30号
    t2_blocks: tuple[Block, ...]
    t3_columns: tuple[Node, ...]
    t3_rows: tuple[Node, ...]
    t4_groups: tuple[Node, ...]
    t4_results: tuple[Node, ...]


class Format:
    """One format revision as a value: tables, cells, defined names, fields, units, rules with their
    severities, and the labels messages take. ``load("2021")`` gives the national format; a test can build
    another (``register``) and use both in one process.

    Stages take a Format and run under it (``using``); code inside a stage reads it as ``spec.CELLS``,
    ``spec.RULE[...]``, … (the current format, a context variable) and derives per-format tables once through
    ``per_format``.
    """

    def __init__(self, d: Definition):
        self.definition = d
        self.FORMAT_VERSION = d.version
        self.FORMAT_DOCUMENT = d.document
        cells, labels, checks, fields = _build(d)
        self.CELLS: tuple[CellSpec, ...] = cells
        self.LABELS: tuple[LabelSpec, ...] = labels
        self.CHECKS: tuple[CheckSpec, ...] = checks
        self.FIELDS: tuple[FieldSpec, ...] = fields
        self.CELL: dict[str, CellSpec] = {c.name: c for c in cells}
        self.FIELD: dict[str, FieldSpec] = {f.name: f for f in fields}
        self._cell_by_key = {(c.table, c.row_key, c.column_key): c.name for c in cells}
        self._rows: dict[tuple[str, str], Node] = {}
        self._columns: dict[tuple[str, str], Node] = {}
        for block in d.t2_blocks:
            for n in block.rows:
                self._rows.setdefault(("二", n.key), n)
            for n in block.columns:
                self._columns.setdefault(("二", n.key), n)
        for table, rows, columns in (("三", d.t3_rows, d.t3_columns), ("四", d.t4_groups, d.t4_results)):
            for n in _walk(rows):
                self._rows.setdefault((table, n.key), n)
            for n in _walk(columns):
                self._columns.setdefault((table, n.key), n)
        self.INPUT_CELLS: tuple[CellSpec, ...] = tuple(c for c in cells if not c.computed)
        self.RULES: tuple[Rule, ...] = _rules(self)
        self.RULE: dict[str, Rule] = {r.key: r for r in self.RULES}
        self.KEY_FIGURES: tuple[KeyFigure, ...] = _key_figures(self)
        self.CLAIM_VOCABULARY: ClaimVocabulary = _claim_vocabulary(self)
        self.PLAUSIBILITY_CHECKS: tuple[PlausibilityCheck, ...] = _plausibility_checks(self)
        self.PLAUSIBILITY: dict[str, PlausibilityCheck] = {c.key: c for c in self.PLAUSIBILITY_CHECKS}
        self.RULE_SUMMARIES: dict[str, str] = _rule_summaries(self)
        self.SEVERITIES: dict[str, Severity] = _severities(self)
        self.MESSAGE_LABELS: dict[str, str] = _message_labels(self)
        self._derived: dict[Callable, object] = {}
        self._json: dict | None = None

    def __repr__(self) -> str:
        return f"Format({self.FORMAT_VERSION!r})"

    def __reduce__(self):  # a worker process gets the same registered format, never a copy
        return (load, (self.FORMAT_VERSION,))

    def cell_name(self, table: str, row_key: str, column_key: str) -> str:
        """The defined name of a table cell by its keys, e.g. ("三", "new", "total") → T3_new_total."""
        return self._cell_by_key[(table, row_key, column_key)]

    def row_node(self, table: str, key: str) -> Node:
        """A row of a table by its key (table 四: a group), e.g. ("三", "carried_in") → 二、上年结转…."""
        return self._rows[(table, key)]

    def column_node(self, table: str, key: str) -> Node:
        """A column of a table by its key, e.g. ("四", "corrected") → 结果纠正."""
        return self._columns[(table, key)]

    def table_cells(self, table: str) -> tuple[CellSpec, ...]:
        return tuple(c for c in self.CELLS if c.table == table)

    def inputs_of(self, names: Iterable[str]) -> tuple[str, ...]:
        """The input cells behind ``names``: an input cell itself, a computed total its addends, recursively (in
        order, without repeats), e.g. （七）总计·自然人 → the 自然人 cell of every result row."""
        out: dict[str, None] = {}

        def walk(name: str) -> None:
            c = self.CELL[name]
            if c.computed:
                for a in c.addends:
                    walk(a)
            else:
                out.setdefault(name, None)

        for n in names:
            walk(n)
        return tuple(out)

    def fields(self, sheet: str | None = None, section: str | None = None) -> tuple[FieldSpec, ...]:
        return tuple(
            f for f in self.FIELDS if (sheet is None or f.sheet == sheet) and (section is None or f.section == section)
        )

    def all_defined_names(self) -> dict[str, tuple[str, str]]:
        """Every defined name of the template → (sheet, A1)."""
        names = {c.name: (c.sheet, c.ref) for c in self.CELLS}
        names.update({f.name: (f.sheet, f.ref) for f in self.FIELDS})
        for src, ref_name in T2_REFERENCE_NAMES.items():
            names[ref_name] = (T2_SHEET, _a1(T2_REFERENCE_COL, _split_ref(self.CELL[src].ref)[1]))
        return names

    def as_json(self) -> dict:
        if self._json is None:
            self._json = _as_json(self)
        return self._json


DEFINITION_2021 = Definition(
    version="2021",
    document="国办公开办函〔2021〕30号",
    t2_blocks=T2_BLOCKS,
    t3_columns=T3_COLUMNS,
    t3_rows=T3_ROWS,
    t4_groups=T4_GROUPS,
    t4_results=T4_RESULTS,
)
_FORMATS: dict[str, Format] = {}


def register(definition: Definition) -> Format:
    """Build the format a definition declares and make it loadable by its version (a worker process re-loads a
    format by version). Registering an equal definition again gives the format already built."""
    fmt = _FORMATS.get(definition.version)
    if fmt is None or (fmt.definition is not definition
                       and dataclasses.astuple(fmt.definition) != dataclasses.astuple(definition)):
        fmt = _FORMATS[definition.version] = Format(definition)
    return fmt


def load(version: str = "2021") -> Format:
    """The format of ``version``; "2021" is the national format."""
    try:
        return _FORMATS[version]
    except KeyError:
        raise KeyError(f"未知的年报格式版本：{version}（已知：{'、'.join(_FORMATS)}）") from None


FORMAT_2021 = register(DEFINITION_2021)
_current: ContextVar[Format] = ContextVar("nianbao_format", default=FORMAT_2021)


def current() -> Format:
    """The format the running stage works under (2021 unless a stage was given another)."""
    return _current.get()


@contextmanager
def using(fmt: Format | None):
    """Run a stage under ``fmt`` (None: keep the current one). Worker processes forked inside inherit it."""
    if fmt is None or fmt is _current.get():
        yield _current.get()
        return
    token = _current.set(fmt)
    try:
        yield fmt
    finally:
        _current.reset(token)


def per_format(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn()`` (a table derived from the format, e.g. a reader's lookup) computed once per format."""

    def get():
        derived = _current.get()._derived
        try:
            return derived[fn]
        except KeyError:
            value = derived[fn] = fn()
            return value

    get.__name__ = getattr(fn, "__name__", "per_format")
    get.__doc__ = fn.__doc__
    return get


#: What a Format holds, read as module attributes of the current format (spec.CELLS, spec.cell_name(…)).
_PER_FORMAT = frozenset({
    "FORMAT_VERSION", "FORMAT_DOCUMENT", "CELLS", "LABELS", "CHECKS", "FIELDS", "CELL", "FIELD", "INPUT_CELLS",
    "RULES", "RULE", "KEY_FIGURES", "RULE_SUMMARIES", "cell_name", "table_cells", "inputs_of", "fields",
    "all_defined_names", "as_json", "PLAUSIBILITY_CHECKS", "PLAUSIBILITY", "SEVERITIES", "MESSAGE_LABELS", "row_node",
    "column_node", "CLAIM_VOCABULARY",
})


def __getattr__(name: str):
    if name in _PER_FORMAT:
        return getattr(_current.get(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
