"""County rollup: totals = Σ over passing agencies (R12), categories, key figures, year on year, completeness."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_render_data import ROSTER, complete_values, county_batch, make_agency, workspace

from pipeline import aggregate, spec


@pytest.fixture
def batch():
    return county_batch(2024)


def test_totals_are_sums_over_passing_agencies_only(batch):
    passed = {"T-000", "T-101", "T-201"}
    r = aggregate.rollup(batch, passed, [], workspace())
    counted = [a for a in batch if a.code in passed]
    for c in spec.CELLS:
        expected = sum((a.values[c.name] for a in counted), Decimal(0) if c.kind == "money" else 0)
        assert r.totals[c.name] == expected, c.name
        assert type(r.totals[c.name]) is (Decimal if c.kind == "money" else int)
    assert [a.code for a in r.agencies] == ["T-000", "T-101", "T-201"]  # roster order


def test_county_totals_satisfy_the_agency_rules(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    for rule in spec.RULES:
        if rule.scope == "agency":
            lhs = sum(r.totals[n] for n in rule.lhs)
            rhs = sum(r.totals[n] for n in rule.rhs)
            assert lhs == rhs, rule.key


def test_money_is_summed_exactly_as_decimal():
    a = make_agency(ROSTER[0], values=complete_values({"T2_fees_amount": Decimal("0.1")}))
    b = make_agency(ROSTER[1], values=complete_values({"T2_fees_amount": Decimal("0.2")}))
    r = aggregate.rollup([a, b], {a.code, b.code}, [], workspace())
    assert r.totals["T2_fees_amount"] == Decimal("0.3")


def test_categories_partition_the_totals(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    assert [c.category for c in r.by_category] == list(spec.CATEGORY_LABELS)
    assert [c.agencies for c in r.by_category] == [1, 2, 2]
    for c in spec.CELLS:
        assert sum((ct.values[c.name] for ct in r.by_category), Decimal(0) if c.kind == "money" else 0) == r.totals[c.name]
    dept = next(ct for ct in r.by_category if ct.category == "县直部门")
    assert dept.values["T3_new_total"] == sum(a.values["T3_new_total"] for a in batch if a.category == "县直部门")


def test_key_figures_sum_their_groups(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    for row in r.agencies:
        a = next(x for x in batch if x.code == row.code)
        assert row.key["withheld"] == sum(a.values[f"T3_{leaf.key}_total"] for leaf in _group("withheld").leaves())
        assert row.key["new"] == a.values["T3_new_total"]
        assert row.key["litigation"] == a.values["T4_litigation_direct_total"] + a.values["T4_litigation_after_total"]
        assert row.key["litigation_corrected"] == (
            a.values["T4_litigation_direct_corrected"] + a.values["T4_litigation_after_corrected"]
        )
    for k in spec.KEY_FIGURES:
        assert r.key[k.key] == sum(row.key[k.key] for row in r.agencies)
    # the outcome figures and 结转 add up to 一+二
    t = r.totals
    assert sum(r.key[k] for k in spec.OUTCOME_KEYS) + r.key["carried_over"] == t["T3_new_total"] + t["T3_carried_in_total"]


def _group(key: str) -> spec.Node:
    def walk(nodes):
        for n in nodes:
            yield n
            yield from walk(n.children)

    return next(n for n in walk(spec.T3_ROWS) if n.key == key)


def test_year_on_year(batch):
    previous = county_batch(2023, seed=1)
    r = aggregate.rollup(batch, {a.code for a in batch}, previous, workspace())
    assert r.has_previous
    row = next(y for y in r.yoy if y.key == "new")
    prev_new = sum(a.values["T3_new_total"] for a in previous)
    assert (row.current, row.previous, row.change) == (r.key["new"], prev_new, r.key["new"] - prev_new)
    assert row.rate == (Decimal(row.change) / Decimal(prev_new) if prev_new else None)
    fees = next(y for y in r.yoy if y.key == "T2_fees_amount")
    assert isinstance(fees.current, Decimal) and fees.kind == "money"
    assert {y.key for y in r.yoy} >= {k.key for k in spec.KEY_FIGURES}


def test_year_on_year_compares_the_same_agencies(batch):
    previous = county_batch(2023, seed=1)
    r = aggregate.rollup(batch, {"T-000", "T-101"}, previous, workspace())
    assert r.previous_totals["T3_new_total"] == sum(a.values["T3_new_total"] for a in previous[:2])


def test_no_year_on_year_without_previous(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    assert r.yoy == () and not r.has_previous and r.previous_key is None


def test_year_on_year_rate_is_none_when_last_year_was_zero():
    rows = aggregate.year_on_year(complete_values({"T3_new_natural": 3}), complete_values({}))
    row = next(y for y in rows if y.key == "new")
    assert (row.change, row.rate) == (3, None)


def test_completeness_lists_missing_failed_and_off_roster(batch):
    submitted = [a for a in batch if a.code != "T-202"]
    stranger = make_agency(ROSTER[0].__class__("X-999", "外单位", "县直部门"))
    r = aggregate.rollup(submitted + [stranger], {"T-000", "T-101", "T-102", "X-999"}, [], workspace())
    c = r.completeness
    assert (c.roster, c.submitted, c.passed) == (5, 4, 3)
    assert [e.code for e in c.missing] == ["T-202"]
    assert [e.code for e in c.failed] == ["T-201"]
    assert [e.code for e in c.not_in_roster] == ["X-999"]
    assert not c.complete
    assert "X-999" not in {a.code for a in r.agencies}  # off-roster agencies are never summed
    assert [e.status for e in c.entries][:5] == [spec.SUMMARY_LABELS[s] for s in
                                                 ("passed", "passed", "passed", "failed", "missing")]


def test_complete_when_every_roster_agency_passed(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    assert r.completeness.complete and r.completeness.pass_rate == 1


def test_duplicate_workbooks_are_counted_once(batch):
    dup = make_agency(ROSTER[1], seed=9)
    r = aggregate.rollup(batch + [dup], {a.code for a in batch}, [], workspace())
    assert r.totals["T3_new_total"] == sum(a.values["T3_new_total"] for a in batch)
    assert r.notes


def test_the_county_agency_narrates(batch):
    r = aggregate.rollup(batch, {a.code for a in batch}, [], workspace())
    assert r.county_agency is not None and r.county_agency.code == "T-000"
    r = aggregate.rollup(batch, {"T-101"}, [], workspace())
    assert r.county_agency is None


def test_nothing_passed_gives_zero_totals(batch):
    r = aggregate.rollup(batch, set(), [], workspace(), year=2024)
    assert r.year == 2024 and r.agencies == ()
    assert all(v == 0 for v in r.totals.values())


def test_fee_totals_over_passing_agencies(batch):
    import dataclasses

    charged = dataclasses.replace(batch[2], fields=dict(
        batch[2].fields, FEE_fee_charged="是", FEE_fee_notices=3, FEE_fee_notice_amount=Decimal(300),
        FEE_fee_collected=Decimal("200.5")))
    failed = dataclasses.replace(batch[3], fields=dict(batch[3].fields, FEE_fee_charged="是", FEE_fee_notices=9))
    agencies = batch[:2] + [charged, failed] + batch[4:]
    r = aggregate.rollup(agencies, {a.code for a in agencies} - {failed.code}, [], workspace())
    assert r.fees == aggregate.FeeTotals((charged.name,), 3, Decimal(300), Decimal("200.5"))
    from pipeline import render

    assert render.county_fee_paragraph(r.fees) == (
        "本年度全县共有1个单位（测试县教育局）收取信息处理费，发出收费通知3件，通知金额300元，实际收取200.50元。"
    )
    assert aggregate.rollup(batch, set(), [], workspace()).fees == aggregate.FeeTotals()
