"""Typed records passed between the stages (read → validate → aggregate → render)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from . import spec

if TYPE_CHECKING:
    from . import findings as F
    from .workspace import Agency

Number = int | Decimal


#: The agency key of a workbook whose code and name point at two different agencies (read.identify): it belongs
#: to no agency. ``未归属:<file>`` is never a roster code (it holds the file's name); shown as ``未归属（<name>）``.
UNATTRIBUTED = "未归属"


def unattributed_code(file: str) -> str:
    return f"{UNATTRIBUTED}:{file}"


def unattributed_name(wb_name: str, file: str) -> str:
    from pathlib import PurePosixPath

    return f"{UNATTRIBUTED}（{wb_name or PurePosixPath(file).stem}）"


def is_unattributed(code: str) -> bool:
    return code.startswith(UNATTRIBUTED + ":")


@dataclass(frozen=True)
class AgencyData:
    """One agency's workbook for one year, as read: every figure and every field, keyed by defined name.

    ``values`` holds every cell of spec.CELLS (tables 二, 三, 四) by name: counts as int, 本年收费金额 as
    Decimal (万元); computed cells (totals) are recomputed from their addends, never the cached value.
    ``fields`` holds every spec.FIELDS entry by name (INFO_*, TXT_*, FEE_*, META_*): texts as str ('' when
    blank), FEE_ counts as int and money as Decimal (None when blank).
    """

    code: str
    name: str
    category: str
    year: int
    file: str
    values: Mapping[str, Number]
    fields: Mapping[str, object] = field(default_factory=dict)

    def text(self, name: str) -> str:
        v = self.fields.get(name)
        return "" if v is None else str(v)


# ---- validation's result (built by validate.py) -------------------------------------------------------------

VERDICT_PASS, VERDICT_WARN, VERDICT_FAIL, VERDICT_MISSING = "通过", "有提示", "有错误", "未报送"


@dataclass(frozen=True)
class AgencyVerdict:
    agency_code: str
    agency_name: str
    files: tuple[str, ...]
    verdict: str  # 通过 / 有提示 / 有错误 / 未报送
    errors: int
    warnings: int


@dataclass
class Report:
    year: int
    findings: list[F.Finding]
    agencies: list[AgencyVerdict]
    passed: list[str]  # agency codes without any 错误 (their reports can be rendered)
    missing: list[str] = field(default_factory=list)  # roster codes without a workbook
    format: spec.Format = field(default_factory=spec.current, compare=False)  # the format validated against
    _verdicts: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _verdicts_of: int = field(default=-1, init=False, repr=False, compare=False)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.missing

    def verdict(self, agency_code: str) -> str | None:
        if self._verdicts_of != len(self.agencies):  # built once (asked once per file: O(files × agencies))
            self._verdicts.clear()
            for a in reversed(self.agencies):  # the first agency of a code, as a scan would find
                self._verdicts[a.agency_code] = a.verdict
            self._verdicts_of = len(self.agencies)
        return self._verdicts.get(agency_code)

    def by_code(self) -> dict[str, list[F.Finding]]:
        out: dict[str, list[F.Finding]] = defaultdict(list)
        for f in self.findings:
            out[f.code].append(f)
        return dict(out)

    def for_agency(self, agency_code: str) -> list[F.Finding]:
        return [f for f in self.findings if f.agency_code == agency_code]


# ---- aggregation's result (built by aggregate.py) ------------------------------------------------------------

def _ratio(a: int, b: int) -> Decimal:
    return (Decimal(a) / Decimal(b)) if b else Decimal(0)



@dataclass(frozen=True)
class AgencyFigures:
    """One row of the per-agency breakdown: the key figures (spec.KEY_FIGURES) and every cell."""

    code: str
    name: str
    category: str
    key: Mapping[str, Number]  # spec.KEY_FIGURES key → value
    values: Mapping[str, Number]  # every spec cell


@dataclass(frozen=True)
class CategoryTotals:
    category: str  # spec.CATEGORY_LABELS
    agencies: int  # passing agencies of that category
    values: Mapping[str, Number]  # every spec cell
    key: Mapping[str, Number]


@dataclass(frozen=True)
class YoyRow:
    key: str
    label: str
    kind: str  # count / money
    current: Number
    previous: Number
    change: Number
    rate: Decimal | None  # change / previous as a fraction; None when previous is 0


@dataclass(frozen=True)
class RosterEntry:
    code: str
    name: str
    category: str
    status: str  # spec.SUMMARY_LABELS value: 校验通过 / 未通过校验 / 未报送 / 不在名册


@dataclass(frozen=True)
class Completeness:
    roster: int
    submitted: int  # roster agencies with a workbook read
    passed: int  # roster agencies whose workbook passed (off-roster ones never count)
    entries: tuple[RosterEntry, ...]  # roster order, then workbooks from agencies not on the roster
    missing: tuple[RosterEntry, ...]  # on the roster, no workbook
    failed: tuple[RosterEntry, ...]  # workbook read, did not pass
    not_in_roster: tuple[RosterEntry, ...]  # read, not summed: off the roster, or 代码与名称不符 (unattributed)

    @property
    def complete(self) -> bool:
        return self.roster > 0 and self.passed == self.roster

    @property
    def submission_rate(self) -> Decimal:
        return _ratio(self.submitted, self.roster)

    @property
    def pass_rate(self) -> Decimal:
        return _ratio(self.passed, self.roster)


@dataclass(frozen=True)
class FeeTotals:
    """信息处理费 over the passing agencies (section 六 of the county summary)."""

    charged: tuple[str, ...] = ()  # names of the agencies that charged (FEE_fee_charged = 是)
    notices: int = 0
    notice_amount: Decimal = Decimal(0)  # 元
    collected: Decimal = Decimal(0)  # 元
    unanswered: tuple[str, ...] = ()  # names of the agencies that answered neither 是 nor 否 (left blank)


@dataclass(frozen=True)
class Rollup:
    """aggregate(Figures, Report, last year) → Rollup: the county's figures for one year, and every passing
    agency's figures and texts (what render, county_xlsx and any new output take)."""

    year: int
    county: str
    totals: Mapping[str, Number]  # every spec cell, Σ over passing agencies
    key: Mapping[str, Number]  # spec.KEY_FIGURES over ``totals``
    by_category: tuple[CategoryTotals, ...]  # spec.CATEGORIES order
    agencies: tuple[AgencyFigures, ...]  # passing agencies, roster order
    completeness: Completeness
    #: last year's Σ over the agencies compared year on year (``yoy_agencies``); None without last year's figures
    previous_totals: Mapping[str, Number] | None = None
    previous_key: Mapping[str, Number] | None = None
    yoy: tuple[YoyRow, ...] = ()  # this year against last over ``yoy_agencies``; empty without last year's data
    yoy_key: Mapping[str, Number] | None = None  # this year's key figures over ``yoy_agencies``
    #: the codes of the agencies summed this year that have last year's figures too (the year-on-year scope) …
    yoy_agencies: tuple[str, ...] = ()
    #: … and the names of those summed this year without them (left out of the comparison)
    yoy_without: tuple[str, ...] = ()
    county_agency: AgencyData | None = None  # the passing 本级 agency, whose texts narrate the summary
    fees: FeeTotals = field(default_factory=FeeTotals)
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: every passing agency's workbook (figures and texts), one per code, in the order read, each with its roster
    #: entry (None off the roster): one agency report each
    reports: tuple[tuple[AgencyData, Agency | None], ...] = ()
    format: spec.Format = field(default_factory=spec.current, compare=False)  # the format of every figure here

    @property
    def has_previous(self) -> bool:
        return self.previous_totals is not None

    def yoy_scope(self) -> str:
        """Which agencies the year-on-year comparison is over, as a sentence ('' without one): those summed this
        year that have last year's figures too, and those left out."""
        if not self.yoy:
            return ""
        s = f"{spec.SUMMARY_LABELS['yoy_scope']}：两年均有报表的{len(self.yoy_agencies)}个单位"
        if self.yoy_without:
            s += (f"（未找到{self.year - 1}年度报表、未计入同比的{len(self.yoy_without)}个单位："
                  f"{'、'.join(self.yoy_without)}）")
        return s + "。"
