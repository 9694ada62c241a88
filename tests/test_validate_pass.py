"""The pandera pass: every check a typed value, failures decoded by looking the check's name up, under the format
the batch was read under (in the second process too)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from decimal import Decimal
from pathlib import Path
import sys

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from variant_format import with_foundation_column

from pipeline import findings as F
from pipeline import parallel, read, spec, validate, workspace
from pipeline.validate import (CellDecimal, CellNegative, CellStatus, FeeNotices, FrameCheck, MoneyPrecision,
                               OtherHigh, Regulations, RuleHolds, YearOnYear)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
C = spec.cell_name


def _schema_checks(schema) -> list[tuple[str | None, str]]:
    """(column or None for a whole-frame check, check name) of every check of a pandera schema."""
    out = [(col, chk.name) for col, column in schema.columns.items() for chk in column.checks]
    return out + [(None, chk.name) for chk in schema.checks]


def _with_format(batch, fmt: spec.Format):
    """The batch, said to have been read under ``fmt`` (Batch, or Figures with a ``format`` field)."""
    if any(f.name == "format" for f in dataclasses.fields(batch)):
        return dataclasses.replace(batch, format=fmt)
    out = copy.copy(batch)
    out.format = fmt
    return out


# ---- every check is a typed value, found by its name -----------------------------------------------------


def test_every_check_name_maps_to_its_typed_check():
    plan = validate._plan()
    found = _schema_checks(plan.schema)
    names = [name for _, name in found]
    assert len(names) == len(set(names)) == len(plan.checks)  # one name a check, no name twice
    assert set(names) == set(plan.checks)
    for column, name in found:
        check = plan.checks[name]
        assert isinstance(check, FrameCheck)
        assert check.column == column  # a column check sits on the column it says; a frame check on the frame
        assert check.cells and set(check.cells) <= set(spec.CELL)


def test_the_checks_are_the_formats():
    checks = list(validate._plan().checks.values())

    def of(kind):
        return [c for c in checks if type(c) is kind]

    assert [c.cell for c in of(CellNegative)] == [c.name for c in spec.CELLS]
    assert [c.cell for c in of(CellDecimal)] == [c.name for c in spec.CELLS if c.kind == "count"]
    assert [c.cell for c in of(CellStatus)] == [c.name for c in spec.CELLS]
    assert [c.cell for c in of(MoneyPrecision)] == [c.name for c in spec.CELLS if c.kind == "money"]
    assert [c.rule for c in of(RuleHolds)] == list(spec.RULES)
    assert [c.cell for c in of(YearOnYear)] == list(validate._yoy_cells())
    assert [c.cells for c in of(Regulations)] == [tuple(c.name for c in spec.table_cells("二")
                                                        if c.row_key == "regulations")]
    assert [(c.other, c.total) for c in of(OtherHigh)] == [(C("三", "other_other", "total"), C("三", "total", "total"))]
    assert [c.cells for c in of(FeeNotices)] == [(C("三", "other_fee_unpaid", "total"),)]
    assert len(checks) == sum(len(of(k)) for k in (CellNegative, CellDecimal, CellStatus, MoneyPrecision, RuleHolds,
                                                   YearOnYear, Regulations, OtherHigh, FeeNotices))


def test_every_check_reports_a_registered_code_of_its_severity():
    for check in validate._plan().checks.values():
        if isinstance(check, CellStatus):  # the status read decides the code
            assert check.code == ""
            continue
        assert check.code in F.REGISTRY, check
        if isinstance(check, RuleHolds):  # the rule's own severity is the code's
            assert F.REGISTRY[check.code].severity == check.rule.severity, check.rule.key
    assert set(validate._STATUS_CODE.values()) <= set(F.REGISTRY)


# ---- a failing row yields the finding of its typed check --------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    ws = workspace.load(SAMPLE)
    return ws, read.read_batch(ws.files(YEAR), YEAR, ws), read.read_batch(ws.files(YEAR - 1), YEAR - 1, ws)


def _broken_frame(batch, previous) -> tuple[pd.DataFrame, dict[int, type]]:
    """The sample's wide frame with one record broken for each kind of check: record → the kind it breaks."""
    df = validate._wide(batch, previous).copy()
    recs = df.index.tolist()
    assert len(recs) >= 9
    lic, pen = C("二", "licensing", "decisions"), C("二", "penalties", "decisions")
    fees = next(c.name for c in spec.CELLS if c.kind == "money")
    new_total = C("三", "new", "total")
    other, total, unpaid = C("三", "other_other", "total"), C("三", "total", "total"), C("三", "other_fee_unpaid", "total")
    regs = [c.name for c in spec.table_cells("二") if c.row_key == "regulations"]
    broken: dict[int, type] = {}

    def brk(i: int, kind: type, **cols):
        for col, val in cols.items():
            df.at[recs[i], col] = val
        broken[recs[i]] = kind

    brk(0, CellNegative, **{lic: -3.0})
    brk(1, CellDecimal, **{pen: 2.5})
    brk(2, CellStatus, **{validate._STATUS + pen: float(validate._STATUS_NUMBER["text"]), pen: np.nan})
    brk(3, MoneyPrecision, **{validate._DECIMALS + fees: 6.0})
    brk(4, RuleHolds, **{validate._FOUND + new_total: df.at[recs[4], new_total] + 1})  # 合计 shown ≠ Σ
    brk(5, YearOnYear, **{lic: 500.0, validate._PREV + lic: 1.0})
    brk(6, Regulations, **{regs[0]: 1.0})
    brk(7, OtherHigh, **{other: 40.0, total: 50.0})
    brk(8, FeeNotices, **{unpaid: 2.0, "FEE_fee_charged": spec.NO})
    return df, broken


def test_a_failing_row_yields_the_finding_of_its_typed_check(sample):
    ws, batch, previous = sample
    df, broken = _broken_frame(batch, previous)
    plan = validate._plan()
    ctx = validate._Context(batch)
    frame = validate._Frame(df, ctx)
    fails = validate._failures(plan.schema, df)
    assert len(fails)
    got: set[tuple[int, type]] = set()
    for name, case, rec in zip(fails["check"], fails["failure_case"], fails["index"]):
        check = plan.checks[name]  # every failure is of a check of ours: a lookup, nothing read from the name
        finding = check.finding(int(rec), case, frame)
        assert finding is not None
        expected_code = (validate._STATUS_CODE[validate._STATUSES[int(case)]] if isinstance(check, CellStatus)
                         else check.code)
        assert finding.code == expected_code
        assert finding.severity == F.REGISTRY[expected_code].severity
        refs = {ctx.pos(int(rec))[n][1] for n in check.cells}
        assert finding.cells and set(finding.cells) <= refs, (check, finding.cells)
        assert finding.agency_code == batch.records[int(rec)].agency_code
        got.add((int(rec), type(check)))
    assert set(broken.items()) <= got  # each broken record fails the check it was broken for


def test_the_findings_do_not_depend_on_the_check_names(sample, monkeypatch):
    """Every check renamed to an opaque key (a fresh format, so a fresh plan): the same findings."""
    ws, batch, previous = sample
    df, _ = _broken_frame(batch, previous)

    def decode() -> list[F.Finding]:
        plan = validate._plan()
        frame = validate._Frame(df, validate._Context(batch))
        fails = validate._failures(plan.schema, df)
        out = [plan.checks[n].finding(int(r), c, frame) for n, c, r in
               zip(fails["check"], fails["failure_case"], fails["index"])]
        return F.sort_findings([f for f in out if f is not None])

    base = decode()
    assert {f.code for f in base} >= {"CELL_NEGATIVE", "CELL_DECIMAL", "CELL_TEXT", "MONEY_PRECISION", "R2",
                                      "YOY_JUMP", "R11_REGULATIONS", "OTHER_HIGH", "R9_FEE"}
    opaque = spec.register(dataclasses.replace(spec.DEFINITION_2021, version="2021-test-opaque-check-names"))
    monkeypatch.setattr(validate, "_check_key", lambda check, n: hashlib.sha1(str(n).encode()).hexdigest())
    with spec.using(opaque):
        assert all(len(name) == 40 for name in validate._plan().checks)
        assert decode() == base


# ---- under the batch's format, in the second process too --------------------------------------------------


VARIANT = spec.register(with_foundation_column(spec.DEFINITION_2021, "2021-test-foundation-validate"))
BASE = spec.load("2021")


def _variant_batch(batch, new_foundation: int):
    """The 2021 batch as the variant would have read it: every cell at the variant's position, the new column
    (基金会) 0 but its 本年新收 ``new_foundation`` (the totals as they were: the sample's show no number of
    their own), the variant's version in 格式版本."""
    v = batch.values
    v = v.astype({c: object for c in v.columns if isinstance(v[c].dtype, pd.CategoricalDtype)})
    extra = []
    for c in VARIANT.CELLS:
        if c.name in BASE.CELL:
            continue
        like = v[v["name"] == C("三", c.row_key, "natural")].copy()
        n = new_foundation if c.row_key == "new" else 0
        like = like.assign(name=c.name, column=c.column, value=n, number=float(n), raw=str(n), status="ok",
                           computed=False, found=np.nan, formula=False)
        extra.append(like)
    v = pd.concat([v, *extra], ignore_index=True).sort_values(["record"], kind="stable", ignore_index=True)
    v["sheet"] = [VARIANT.CELL[n].sheet for n in v["name"]]
    v["cell"] = [VARIANT.CELL[n].ref for n in v["name"]]
    t = batch.texts.copy()  # the variant's template writes its own version
    version = t["name"] == "META_format_version"
    t["raw"] = t["raw"].where(~version, VARIANT.FORMAT_VERSION)
    t["value"] = t["value"].astype(object).where(~version, VARIANT.FORMAT_VERSION)
    return _with_format(dataclasses.replace(batch, values=v, texts=t), VARIANT)


def test_validate_runs_under_the_batchs_format(sample):
    ws, batch, _ = sample
    assert spec.current() is BASE
    clean = validate.validate(_variant_batch(batch, 0), ws, None)
    assert clean.format is VARIANT and clean.errors == 0 and len(clean.passed) == len(batch.records)
    report = validate.validate(_variant_batch(batch, 3), ws, None)
    assert report.format is VARIANT and spec.current() is BASE
    new = VARIANT.CELL[VARIANT.cell_name("三", "new", "foundation")]
    r1 = [f for f in report.findings if f.code == "R1"]
    assert len(r1) == len(batch.records) and all(new.ref in f.cells and f.sheet == new.sheet for f in r1)
    # 基金会: 一+二 = 3, （七）+四 = 0; and the texts that quote 法人或其他组织 now disagree with the variant's
    # columns of it (基金会 among them), the table itself unbalanced
    assert {f.code for f in report.findings} == {"R1", "TEXT_NUMBER_MISMATCH"}
    r10 = [f for f in report.findings if f.code == "TEXT_NUMBER_MISMATCH"]
    assert r10 and all(new.ref in f.cells and F.TEXT_NUMBER_HINTS[False] in f.message for f in r10)
    # the same workbooks said to be 2021's: their 格式版本 is not 2021's, and the new column none of its cells
    as_2021 = validate.validate(_with_format(_variant_batch(batch, 3), BASE), ws, None)
    assert as_2021.format is BASE and {f.code for f in as_2021.findings} == {"FORMAT_VERSION"}
    assert len(as_2021.findings) == len(batch.records)


@pytest.mark.skipif(not parallel.can_fork(), reason="the second process is forked")
def test_the_second_process_runs_under_the_batchs_format(sample, monkeypatch, tmp_path):
    ws, batch, _ = sample
    variant = _variant_batch(batch, 3)
    in_process = validate.validate(variant, ws, None, jobs=1)
    real = validate._check_frame

    def spy(*args, **kw):
        (tmp_path / str(os.getpid())).write_text(spec.current().FORMAT_VERSION, encoding="utf-8")
        return real(*args, **kw)

    monkeypatch.setattr(validate, "_check_frame", spy)
    monkeypatch.setattr(validate, "PARALLEL_MIN_RECORDS", 1)
    forked = validate.validate(variant, ws, None, jobs=2)
    ran = {int(p.name): p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    assert list(ran.values()) == [VARIANT.FORMAT_VERSION] and os.getpid() not in ran  # in the other process
    assert forked.findings == in_process.findings and forked.format is VARIANT
    assert {f.code for f in forked.findings} == {"R1", "TEXT_NUMBER_MISMATCH"}
    assert len([f for f in forked.findings if f.code == "R1"]) == len(batch.records)


def test_money_precision_is_decimal_places_of_the_value_typed(sample):
    """The precision check reads the decimals of the Decimal read (a float would lose them)."""
    ws, batch, _ = sample
    fees = next(c.name for c in spec.CELLS if c.kind == "money")
    v = batch.values.copy()
    row = v.index[(v["record"] == 0) & (v["name"] == fees)][0]
    v["value"] = v["value"].astype(object)
    v.at[row, "value"] = Decimal("1.23456")
    v.at[row, "number"] = 1.23456
    report = validate.validate(dataclasses.replace(batch, values=v), ws, None)
    hits = [f for f in report.findings if f.code == "MONEY_PRECISION"]
    assert len(hits) == 1 and hits[0].cells == (spec.CELL[fees].ref,)
