"""Aggregate the county: totals of every spec cell over the agencies that passed, by category, per agency,
year on year, and who is missing (R12: county cell = Σ agencies' cells; money summed as Decimal).

The stage: ``aggregate(figures, report, previous, workspace)`` → ``model.Rollup`` (pure: nothing is read or
written here); ``rollup`` does the same from lists of agencies' figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import pandas as pd

from . import spec
from .model import (AgencyData, AgencyFigures, CategoryTotals, Completeness, FeeTotals, Number, Report, Rollup,
                    RosterEntry, YoyRow, is_unattributed)
from .workspace import Agency, Workspace

if TYPE_CHECKING:
    from .read import Figures



@spec.per_format
def cell_names() -> tuple[str, ...]:
    return tuple(c.name for c in spec.CELLS)


@spec.per_format
def money_cells() -> frozenset[str]:
    return frozenset(c.name for c in spec.CELLS if c.kind == "money")


@spec.per_format
def key_figure() -> dict:
    return {k.key: k for k in spec.KEY_FIGURES}


def _zero(name: str) -> Number:
    return Decimal(0) if name in money_cells() else 0


@spec.per_format
def zero() -> dict[str, Number]:
    return {n: _zero(n) for n in cell_names()}


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


def frame(agencies: Iterable[AgencyData]) -> pd.DataFrame:
    """One row per agency (index: code), one column per spec cell; counts int64, money as Decimal objects."""
    agencies = list(agencies)
    names, money, zeros = cell_names(), money_cells(), zero()
    rows = [{n: a.values.get(n, zeros[n]) for n in names} for a in agencies]
    index = pd.Index([a.code for a in agencies], name="code", dtype=object)
    df = pd.DataFrame(rows, columns=list(names), index=index)
    for n in names:
        if n in money:
            df[n] = df[n].map(lambda v: Decimal(v) if v is not None else Decimal(0)).astype(object)
        else:
            df[n] = df[n].fillna(0).astype("int64")
    return df


def _column_totals(df: pd.DataFrame) -> dict[str, Number]:
    out: dict[str, Number] = {}
    money = money_cells()
    for n in cell_names():
        if n in money:
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
        items.append((name, f"{c.row}（{c.unit}）" if c.kind == "money" else f"{c.row}（{c.column}）", c.kind, (name,)))
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
) -> Rollup:
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

    names, zeros = cell_names(), zero()
    rows = [
        AgencyFigures(a.code, a.name, a.category, key_figures(a.values), {n: a.values.get(n, zeros[n]) for n in names})
        for a in counted
    ]

    prev_totals = prev_key = yoy_key = None
    yoy: tuple[YoyRow, ...] = ()
    compared: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    if previous:
        # like with like: only the agencies summed this year that have last year's figures too, on both sides (a
        # draft without some agencies, or an agency new or missing last year, would otherwise show as a change)
        last = {a.code: a for a in _dedupe(previous)[0]}
        both = [a for a in counted if a.code in last]
        compared = tuple(a.code for a in both)
        without = tuple(a.name for a in counted if a.code not in last)
        prev_totals = _column_totals(frame([last[a.code] for a in both]))
        prev_key = key_figures(prev_totals)
        now = totals if len(both) == len(counted) else _column_totals(frame(both))
        yoy_key = key_figures(now)
        yoy = year_on_year(now, prev_totals)

    own_label = next(c.label for c in spec.CATEGORIES if c.key == "county_government")
    county_agency = next((a for a in counted if a.category == own_label), None)
    roster = {a.code: a for a in workspace.agencies}
    return Rollup(
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
        yoy_key=yoy_key,
        yoy_agencies=compared,
        yoy_without=without,
        county_agency=county_agency,
        fees=fee_totals(counted),
        notes=tuple(notes),
        reports=tuple((a, roster.get(a.code)) for a in agencies if a.code in passed),
    )


def aggregate(figures: Figures, report: Report, previous: Figures | None, workspace: Workspace) -> Rollup:
    """The aggregate stage: the county's rollup of ``figures`` over the agencies ``report`` passed, with last
    year's ``previous`` figures (their texts are not needed) for the year-on-year comparison."""
    with spec.using(report.format):
        last = [replace(a, fields={}) for a in previous.agency_data()] if previous is not None else None
        return rollup(figures.agency_data(), report.passed, last, workspace, year=report.year)
