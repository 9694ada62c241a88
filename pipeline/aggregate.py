"""Aggregate the county: totals of every spec cell over the agencies that passed, by category, per agency,
year on year, and who is missing (R12: county cell = Σ agencies' cells; money summed as Decimal).

Pure: ``rollup(agencies, passed, previous, workspace)`` → ``CountyRollup``. Nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from . import spec
from .model import AgencyData, Number, is_unattributed
from .workspace import Agency, Workspace

CELL_NAMES: tuple[str, ...] = tuple(c.name for c in spec.CELLS)
MONEY_CELLS: frozenset[str] = frozenset(c.name for c in spec.CELLS if c.kind == "money")
KEY_FIGURE = {k.key: k for k in spec.KEY_FIGURES}


def _zero(name: str) -> Number:
    return Decimal(0) if name in MONEY_CELLS else 0


ZERO: dict[str, Number] = {n: _zero(n) for n in CELL_NAMES}


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


def fee_totals(agencies: Iterable[AgencyData]) -> FeeTotals:
    agencies = list(agencies)
    charged = [a for a in agencies if a.text("FEE_fee_charged").strip() == spec.YES]

    def money(a: AgencyData, name: str) -> Decimal:
        v = a.fields.get(name)
        return Decimal(v) if isinstance(v, (int, Decimal)) else Decimal(0)

    return FeeTotals(
        charged=tuple(a.name for a in charged),
        notices=sum(int(a.fields.get("FEE_fee_notices") or 0) for a in charged),
        notice_amount=sum((money(a, "FEE_fee_notice_amount") for a in charged), Decimal(0)),
        collected=sum((money(a, "FEE_fee_collected") for a in charged), Decimal(0)),
        unanswered=tuple(a.name for a in agencies if a.text("FEE_fee_charged").strip() not in (spec.YES, spec.NO)),
    )


@dataclass(frozen=True)
class CountyRollup:
    year: int
    county: str
    totals: Mapping[str, Number]  # every spec cell, Σ over passing agencies
    key: Mapping[str, Number]  # spec.KEY_FIGURES over ``totals``
    by_category: tuple[CategoryTotals, ...]  # spec.CATEGORIES order
    agencies: tuple[AgencyFigures, ...]  # passing agencies, roster order
    completeness: Completeness
    previous_totals: Mapping[str, Number] | None = None  # last year's Σ over the agencies summed this year
    previous_key: Mapping[str, Number] | None = None
    yoy: tuple[YoyRow, ...] = ()  # empty without last year's data
    county_agency: AgencyData | None = None  # the passing 本级 agency, whose texts narrate the summary
    fees: FeeTotals = field(default_factory=FeeTotals)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_previous(self) -> bool:
        return self.previous_totals is not None


def _ratio(a: int, b: int) -> Decimal:
    return (Decimal(a) / Decimal(b)) if b else Decimal(0)


def frame(agencies: Iterable[AgencyData]) -> pd.DataFrame:
    """One row per agency (index: code), one column per spec cell; counts int64, money as Decimal objects."""
    agencies = list(agencies)
    rows = [{n: a.values.get(n, ZERO[n]) for n in CELL_NAMES} for a in agencies]
    index = pd.Index([a.code for a in agencies], name="code", dtype=object)
    df = pd.DataFrame(rows, columns=list(CELL_NAMES), index=index)
    for n in CELL_NAMES:
        if n in MONEY_CELLS:
            df[n] = df[n].map(lambda v: Decimal(v) if v is not None else Decimal(0)).astype(object)
        else:
            df[n] = df[n].fillna(0).astype("int64")
    return df


def _column_totals(df: pd.DataFrame) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for n in CELL_NAMES:
        if n in MONEY_CELLS:
            out[n] = sum(df[n].tolist(), Decimal(0))
        else:
            out[n] = int(df[n].sum()) if len(df) else 0
    return out


def key_figures(values: Mapping[str, Number]) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for k in spec.KEY_FIGURES:
        zero: Number = Decimal(0) if k.kind == "money" else 0
        out[k.key] = sum((values.get(c, _zero(c)) for c in k.cells), zero)
    return out


def _yoy_items() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(key, label, kind, cells) of every year-on-year row: table 二 cells, then the key figures."""
    items: list[tuple[str, str, str, tuple[str, ...]]] = []
    for name in spec.YOY_T2_CELLS:
        c = spec.CELL[name]
        items.append((name, f"{c.row}（万元）" if c.kind == "money" else f"{c.row}（{c.column}）", c.kind, (name,)))
    items += [(k.key, k.label, k.kind, k.cells) for k in spec.KEY_FIGURES]
    return items


def year_on_year(current: Mapping[str, Number], previous: Mapping[str, Number]) -> tuple[YoyRow, ...]:
    rows: list[YoyRow] = []
    for key, label, kind, cells in _yoy_items():
        zero: Number = Decimal(0) if kind == "money" else 0
        cur = sum((current.get(c, zero) for c in cells), zero)
        prev = sum((previous.get(c, zero) for c in cells), zero)
        change = cur - prev
        rate = (Decimal(change) / Decimal(prev)) if prev else None
        rows.append(YoyRow(key, label, kind, cur, prev, change, rate))
    return tuple(rows)


def _dedupe(agencies: Iterable[AgencyData]) -> tuple[list[AgencyData], list[str]]:
    """One record per agency code (the first read); a second workbook of the same agency is never summed twice."""
    seen: set[str] = set()
    out: list[AgencyData] = []
    notes: list[str] = []
    for a in agencies:
        if a.code in seen:
            notes.append(f"{a.name}（{a.code}）报送了多份报表，{a.file} 未计入汇总（只计第一份）。")
            continue
        seen.add(a.code)
        out.append(a)
    return out, notes


def completeness(roster: Iterable[Agency], submitted: Iterable[AgencyData], passed: Iterable[str]) -> Completeness:
    L = spec.SUMMARY_LABELS
    passed = set(passed)
    roster = list(roster)
    read = {a.code: a for a in submitted}
    entries: list[RosterEntry] = []
    for r in roster:
        if r.code not in read:
            status = L["missing"]
        elif r.code in passed:
            status = L["passed"]
        else:
            status = L["failed"]
        entries.append(RosterEntry(r.code, r.name, r.category, status))
    roster_codes = {r.code for r in roster}
    extra = [
        RosterEntry(a.code, a.name, a.category, L["unattributed"] if is_unattributed(c) else L["not_in_roster"])
        for c, a in read.items() if c not in roster_codes
    ]
    in_roster = entries
    return Completeness(
        roster=len(roster),
        submitted=sum(1 for e in in_roster if e.status != L["missing"]),
        passed=sum(1 for e in in_roster if e.status == L["passed"]),
        entries=tuple(in_roster + extra),
        missing=tuple(e for e in in_roster if e.status == L["missing"]),
        failed=tuple(e for e in in_roster if e.status == L["failed"]),
        not_in_roster=tuple(extra),
    )


def rollup(
    agencies: Sequence[AgencyData],
    passed: Iterable[str],
    previous: Sequence[AgencyData] | None,
    workspace: Workspace,
    *,
    year: int | None = None,
) -> CountyRollup:
    """The county's figures for one year. Only agencies in ``passed`` are summed (and only if on the roster
    when a roster exists); the others appear in ``completeness``."""
    passed = set(passed)
    agencies, notes = _dedupe(agencies)
    roster_codes = [a.code for a in workspace.agencies]
    order = {c: i for i, c in enumerate(roster_codes)}
    counted = [a for a in agencies if a.code in passed and (not roster_codes or a.code in order)]
    counted.sort(key=lambda a: (order.get(a.code, len(order)), a.code))
    if year is None:
        year = counted[0].year if counted else (agencies[0].year if agencies else 0)

    df = frame(counted)
    totals = _column_totals(df)

    cats = pd.Series([a.category for a in counted], index=df.index, dtype=object)
    by_category: list[CategoryTotals] = []
    for cat in spec.CATEGORY_LABELS:
        sub = df[cats == cat] if len(df) else df
        vals = _column_totals(sub)
        by_category.append(CategoryTotals(cat, len(sub), vals, key_figures(vals)))

    rows = [
        AgencyFigures(a.code, a.name, a.category, key_figures(a.values), {n: a.values.get(n, ZERO[n]) for n in CELL_NAMES})
        for a in counted
    ]

    prev_totals = prev_key = None
    yoy: tuple[YoyRow, ...] = ()
    if previous:
        # like with like: last year's figures of the agencies summed this year (a draft without some agencies
        # would otherwise show their whole last-year figures as a fall)
        summed = {a.code for a in counted}
        prev_list = [a for a in _dedupe(previous)[0] if a.code in summed]
        prev_totals = _column_totals(frame(prev_list))
        prev_key = key_figures(prev_totals)
        yoy = year_on_year(totals, prev_totals)

    own_label = next(c.label for c in spec.CATEGORIES if c.key == "county_government")
    county_agency = next((a for a in counted if a.category == own_label), None)
    return CountyRollup(
        year=year,
        county=workspace.county.name,
        totals=totals,
        key=key_figures(totals),
        by_category=tuple(by_category),
        agencies=tuple(rows),
        completeness=completeness(workspace.agencies, agencies, passed),
        previous_totals=prev_totals,
        previous_key=prev_key,
        yoy=yoy,
        county_agency=county_agency,
        fees=fee_totals(counted),
        notes=tuple(notes),
    )
