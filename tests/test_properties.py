"""Property tests (hypothesis): the county is the sum of its agencies, rules survive summing, reports give back
their figures, and validation names the cell a single change broke.

Valid figures are generated from the spec, never from a hand-typed list: every input cell of spec.INPUT_CELLS is
drawn (counts as non-negative integers, 万元 as a Decimal with at most spec.MONEY_MAX_DECIMALS places), totals
come from their addends (spec.CELL[name].addends), and every agency rule of spec.RULES that is not the definition
of a total (R1 per column, generated from the table tree) is balanced by moving the difference onto one of its
own input cells. Last year's figures are chained the same way through the cross-year rules (R6, R8). The
generator asserts that every agency rule holds before a value leaves it.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path

from docx import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D
from test_render import official_positions
from test_render_data import COUNTY, complete_values

from pipeline import aggregate, ooxml, read, render, spec, template, validate
from pipeline.model import AgencyData, Number
from pipeline.workspace import Agency, Workspace

YEAR = 2024
AGENCY_RULES = tuple(r for r in spec.RULES if r.scope == "agency")
CROSS_YEAR_RULES = tuple(r for r in spec.RULES if r.scope == "cross_year")
RULE_IDS = frozenset(r.id for r in AGENCY_RULES)
MONEY = frozenset(c.name for c in spec.CELLS if c.kind == "money")
TABLES = ("二", "三", "四")

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def zero(name: str) -> Number:
    return Decimal(0) if name in MONEY else 0


# ------------------------------------------------------------------------------------------------ rules as data


def _defines_total(rule: spec.Rule) -> bool:
    """R2/R3/R5-style rules: a total equals the sum of its addends (true by construction of the totals)."""
    if len(rule.lhs) != 1 or rule.minus or rule.last_year:
        return False
    c = spec.CELL[rule.lhs[0]]
    return c.computed and set(rule.rhs) == set(c.addends)


#: The agency rules the generator has to balance (R1 per column, and rules implied by the others).
BALANCE_RULES = tuple(r for r in AGENCY_RULES if not _defines_total(r))


def _inputs(names) -> list[str]:
    return [n for n in names if not spec.CELL[n].computed]


def _sum(values: Mapping[str, Number], names) -> Number:
    return sum((values[n] for n in names), 0)


def holds(rule: spec.Rule, this: Mapping[str, Number], last: Mapping[str, Number] | None = None) -> bool:
    rhs = _sum(this, rule.rhs) - _sum(this, rule.minus)
    if rule.last_year:
        rhs += _sum(last, rule.last_year)
    return _sum(this, rule.lhs) == rhs


def shown_broken(inputs: Mapping[str, Number], typed: Mapping[str, Number]) -> list[spec.Rule]:
    """The agency rules a workbook breaks: ``inputs`` in the input cells, ``typed`` numbers typed over totals.

    As in validation: a rule whose left side is one total compares the number shown in that cell (typed over, or
    else its formula's value) with the sum of the recomputed parts; every other rule uses recomputed totals.
    """
    full = complete_values(dict(inputs))
    out = []
    for r in AGENCY_RULES:
        if len(r.lhs) == 1 and spec.CELL[r.lhs[0]].computed:
            lhs = typed.get(r.lhs[0], full[r.lhs[0]])
        else:
            lhs = _sum(full, r.lhs)
        if lhs != _sum(full, r.rhs) - _sum(full, r.minus):
            out.append(r)
    # a rule over totals only (R1 in 总计) is the sum of the same rule in each column: reported only when no
    # column reports it (it would name every input of the table)
    def over_totals(r: spec.Rule) -> bool:
        return not (len(r.lhs) == 1 and spec.CELL[r.lhs[0]].computed) and all(spec.CELL[n].computed for n in r.cells)

    in_a_column = any(not over_totals(r) for r in out)
    return [r for r in out if not (over_totals(r) and in_a_column)]


# ------------------------------------------------------------------------------------------------ strategies

COUNTS = st.integers(0, 40) | st.integers(0, 10**6)
MONEY_VALUES = st.decimals(min_value=0, max_value=10**6, places=spec.MONEY_MAX_DECIMALS,
                           allow_nan=False, allow_infinity=False)


def _balance(inputs: dict[str, Number], frozen: frozenset[str] = frozenset()) -> dict[str, Number]:
    """Make every balance rule hold by adding the difference to one of its input cells (never a frozen one)."""
    v = dict(inputs)
    for r in BALANCE_RULES:
        left = [n for n in _inputs(r.lhs) if n not in frozen]
        right = [n for n in _inputs(r.rhs) if n not in frozen]
        if not left or not right:
            continue  # no input cell of its own: implied by the others (checked below)
        full = complete_values(v)
        diff = _sum(full, r.lhs) - (_sum(full, r.rhs) - _sum(full, r.minus))
        if diff > 0:
            v[right[0]] += diff
        elif diff < 0:
            v[left[0]] -= diff
    return v


def _chain(inputs: dict[str, Number], last: Mapping[str, Number]) -> tuple[dict[str, Number], frozenset[str]]:
    """Set the left cell of every cross-year rule from last year's figures (R8: 上年结转 = 上年结转下年度;
    R6: 现行有效 = 上年现行有效 + 制发 − 废止, raising 制发 if that would go below 0)."""
    v = dict(inputs)
    fixed: set[str] = set()
    for r in CROSS_YEAR_RULES:
        (target,) = r.lhs
        if spec.CELL[target].computed:
            continue  # a total (R8's 总计 column): follows from its addends (checked below)
        need = _sum(last, r.last_year) + _sum(v, r.rhs) - _sum(v, r.minus)
        if need < 0:
            v[_inputs(r.rhs)[0]] -= need
            need = 0
        v[target] = need
        fixed.add(target)
    return v, frozenset(fixed)


@st.composite
def valid_figures(draw, last: Mapping[str, Number] | None = None) -> dict[str, Number]:
    """Input-cell figures of one agency for which R1–R5 hold (and R6/R8 against ``last`` when given)."""
    inputs = {c.name: draw(MONEY_VALUES if c.kind == "money" else COUNTS) for c in spec.INPUT_CELLS}
    frozen: frozenset[str] = frozenset()
    if last is not None:
        inputs, frozen = _chain(inputs, last)
    inputs = _balance(inputs, frozen)
    full = complete_values(inputs)
    assert all(v >= 0 for v in full.values())
    assert [r.key for r in AGENCY_RULES if not holds(r, full)] == []
    if last is not None:
        assert [r.key for r in CROSS_YEAR_RULES if not holds(r, full, last)] == []
    return inputs


def agency_data(code: str, name: str, category: str, year: int, inputs: Mapping[str, Number]) -> AgencyData:
    return AgencyData(code=code, name=name, category=category, year=year, file=f"{code}.xlsx",
                      values=complete_values(dict(inputs)), fields={})


@st.composite
def counties(draw):
    """(workspace, this year's agencies, last year's agencies, codes that passed)."""
    n = draw(st.integers(1, 4))
    roster, batch, previous = [], [], []
    for i in range(n):
        code, name = f"P-{i:02d}", f"性质县第{i + 1}单位"
        category = draw(st.sampled_from(spec.CATEGORY_LABELS))
        roster.append(Agency(code, name, category))
        last = draw(valid_figures())
        previous.append(agency_data(code, name, category, YEAR - 1, last))
        batch.append(agency_data(code, name, category, YEAR, draw(valid_figures(complete_values(last)))))
    passed = draw(st.sets(st.sampled_from([a.code for a in batch])))
    ws = Workspace(root=Path("/nonexistent"), county=COUNTY, agencies=tuple(roster))
    return ws, batch, previous, passed


# ------------------------------------------------------------------------------------------------ rollup


@PROPERTY
@given(counties())
def test_county_totals_are_the_sum_of_the_agency_tables(county):
    ws, batch, previous, passed = county
    r = aggregate.rollup(batch, passed, previous, ws)
    summed = [a for a in batch if a.code in passed]
    assert [a.code for a in r.agencies] == [a.code for a in ws.agencies if a.code in passed]
    last = {a.code: a for a in previous}
    for c in spec.CELLS:
        want = sum((a.values[c.name] for a in summed), zero(c.name))
        got = r.totals[c.name]
        assert got == want, c.name
        assert type(got) is (Decimal if c.kind == "money" else int), (c.name, type(got))
        # last year like with like: the same agencies
        assert r.previous_totals[c.name] == sum((last[a.code].values[c.name] for a in summed), zero(c.name))
        # the categories partition the county
        assert sum((ct.values[c.name] for ct in r.by_category), zero(c.name)) == got, c.name
    for k in spec.KEY_FIGURES:
        assert r.key[k.key] == sum((a.key[k.key] for a in r.agencies), 0)
    assert sum(ct.agencies for ct in r.by_category) == len(summed)
    assert r.completeness.passed == len(passed)


@PROPERTY
@given(counties())
def test_every_rule_that_holds_per_agency_holds_for_the_county(county):
    ws, batch, previous, passed = county
    r = aggregate.rollup(batch, passed, previous, ws)
    for rule in AGENCY_RULES:
        assert holds(rule, r.totals), rule.key
        for ct in r.by_category:
            assert holds(rule, ct.values), (rule.key, ct.category)
    for rule in CROSS_YEAR_RULES:
        assert holds(rule, r.totals, r.previous_totals), rule.key


# ------------------------------------------------------------------------------------------------ workbooks


@cache
def _book():
    """One blank template for every example: each example fills every input cell and field it reads back."""
    return template.build_workbook(YEAR)


def write_book(path: Path, inputs: Mapping[str, Number], code: str, name: str,
               typed: Mapping[str, Number] | None = None) -> Path:
    """An agency's workbook written through template.fill; ``typed`` numbers replace total formulas."""
    wb = _book()
    agency = Agency(code, name, spec.CATEGORY_LABELS[1])
    template.fill(wb, {**inputs, **D.field_values(agency, YEAR, dict(inputs))})
    restore = {}
    try:
        for n, value in (typed or {}).items():
            c = spec.CELL[n]
            restore[n] = wb[c.sheet][c.ref].value
            wb[c.sheet][c.ref].value = value
        return ooxml.save_workbook(wb, path)
    finally:
        for n, formula in restore.items():
            wb[spec.CELL[n].sheet][spec.CELL[n].ref].value = formula


def table_figures(doc) -> dict[str, Number]:
    """Every spec cell as printed in a report's tables 二, 三, 四 (positions from spec.LABELS / spec.CELLS)."""
    out: dict[str, Number] = {}
    for t, table in zip(doc.tables, TABLES):
        grid = [row.cells for row in t.rows]  # python-docx rebuilds the whole grid on every Table.cell()
        for r0, c0, name in _number_positions(table):
            text = grid[r0][c0].text
            out[name] = Decimal(text) if name in MONEY else int(text)
    return out


@cache
def _number_positions(table: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((r0, c0, name) for r0, c0, _, _, name in official_positions(table) if name in spec.CELL)


AGENCY_NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
).filter(lambda s: s.strip())


@PROPERTY
@given(inputs=valid_figures(), name=st.one_of(st.just("性质县财政局"), AGENCY_NAMES))
def test_a_workbook_read_and_rendered_gives_back_its_figures(inputs, name):
    """template.fill → read → render → python-docx: every figure of tables 二, 三, 四 comes back (万元 exactly)."""
    expected = complete_values(dict(inputs))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write_book(tmp / "in.xlsx", inputs, "P-01", name)
        batch = read.read_batch([path], YEAR)
        (a,) = batch.agency_data()
        assert a.values == expected
        assert all(type(a.values[n]) is Decimal for n in MONEY)
        out = tmp / "out"
        report = render.render_agency(a, out)
        assert report.parent == out and [p.name for p in out.iterdir()] == [report.name]
        assert table_figures(Document(report)) == expected


@settings(PROPERTY, max_examples=6)
@given(counties())
def test_the_county_report_prints_the_sum_of_the_agencies(county):
    ws, batch, previous, passed = county
    r = aggregate.rollup(batch, passed, previous, ws)
    with tempfile.TemporaryDirectory() as tmp:
        doc = Document(render.render_county(r, ws.county, Path(tmp)))
    want = {c.name: sum((a.values[c.name] for a in batch if a.code in passed), zero(c.name)) for c in spec.CELLS}
    assert table_figures(doc) == want


# ------------------------------------------------------------------------------------------------ validation


def _mutation(inputs: Mapping[str, Number], target: str, value: Number):
    """(inputs, typed) of a workbook whose one cell ``target`` holds ``value`` (a total: typed over its formula)."""
    if spec.CELL[target].computed:
        return dict(inputs), {target: value}
    return {**inputs, target: value}, {}


@st.composite
def mutations(draw, inputs: Mapping[str, Number]):
    """One cell (any table cell, totals included) changed to another value."""
    target = draw(st.sampled_from([c.name for c in spec.CELLS]))
    old = complete_values(dict(inputs))[target]
    new = draw((MONEY_VALUES if target in MONEY else st.integers(0, int(old) + 1000)).filter(lambda v: v != old))
    return target, new


def test_the_generator_reaches_cells_that_break_rules_and_cells_that_do_not():
    """Sanity of the domain below: some single changes break rules, through input cells and totals; some don't."""
    zeros = {c.name: zero(c.name) for c in spec.INPUT_CELLS}
    breaking = {c.name for c in spec.CELLS if shown_broken(*_mutation(zeros, c.name, 1))}
    assert any(spec.CELL[n].computed for n in breaking) and any(not spec.CELL[n].computed for n in breaking)
    assert {c.name for c in spec.CELLS} - breaking  # e.g. table 二: no agency rule


@settings(PROPERTY, max_examples=20)
@given(st.data())
def test_validation_names_the_cell_a_single_change_broke(data):
    """For every single-cell change, validation reports exactly the rules it breaks, each naming the input cells
    behind its rule (a total stands for its addends; a result row of table 三 enters 一+二 = （七）+四 through the
    （七）总计 formula) and a total typed over; the changed cell is always among a finding's cells."""
    inputs = data.draw(valid_figures(), "inputs")
    changes = data.draw(st.lists(mutations(inputs), min_size=1, max_size=4), "changes")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = [write_book(tmp / "P-00.xlsx", inputs, "P-00", "性质县第0单位")]
        expected: dict[str, tuple[str, list[spec.Rule]]] = {paths[0].name: ("", [])}
        for i, (target, value) in enumerate(changes, start=1):
            code = f"P-{i:02d}"
            changed, typed = _mutation(inputs, target, value)
            paths.append(write_book(tmp / f"{code}.xlsx", changed, code, f"性质县第{i}单位", typed))
            expected[paths[-1].name] = (target, shown_broken(changed, typed))
        batch = read.read_batch(paths, YEAR, base=tmp)
        report = validate.validate(batch)

    for file, (target, broken) in expected.items():
        errors = [f for f in report.findings if f.file == file and f.severity == "error"]
        assert all(f.code in RULE_IDS for f in errors), [(f.code, f.cells) for f in errors]
        got = Counter((f.code, f.sheet, frozenset(f.cells)) for f in errors)
        # each finding names the input cells behind its rule, and a total typed over (it lost its formula)
        typed_over = {target} if target and spec.CELL[target].computed else set()
        want = Counter((r.id, spec.CELL[r.lhs[0]].sheet,
                        frozenset(spec.CELL[n].ref for n in r.inputs + tuple(typed_over & set(r.lhs))))
                       for r in broken)
        assert got == want, (file, target)
        if not broken:
            continue
        cell = spec.CELL[target]
        named = {ref for f in errors if f.sheet == cell.sheet for ref in f.cells}
        assert cell.ref in named, target  # the changed cell is named: an input, or the total typed over

