"""Synthetic agencies for the aggregate/render/pdf tests, built from the spec so that every rule R1–R5 holds.

Imported by test_aggregate.py, test_render.py and test_pdf.py (``from test_render_data import …``); the
tests at the bottom check the generator itself.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

from pipeline import spec
from pipeline.model import AgencyData
from pipeline.workspace import Agency, County, Workspace

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_JSON = FIXTURES / "seed_jixian_2024.json"

COUNTY = County(
    name="测试县",
    government="测试县人民政府",
    office="测试县人民政府办公室",
    address="测试省测试县城关镇人民路1号",
    postcode="100000",
    phone="0000-1234567",
    publish_channel="测试县人民政府网-政府信息公开-政府信息公开年报",
    publish_url="https://www.example.gov.cn/xxgknb/",
)

ROSTER: tuple[Agency, ...] = (
    Agency("T-000", "测试县人民政府", "本级", "测试县人民政府办公室", "测试县人民路1号", "100000", "0000-1000001",
           "测试县人民政府网-政府信息公开年报", "https://www.example.gov.cn/xxgknb/bj/"),
    Agency("T-101", "测试县财政局", "县直部门", "测试县财政局办公室", "测试县财源路2号", "100000", "0000-1000002"),
    Agency("T-102", "测试县教育局", "县直部门", "测试县教育局办公室", "测试县学府路3号", "100000", "0000-1000003"),
    Agency("T-201", "测试县东镇人民政府", "乡镇（街道）", "测试县东镇党政办", "测试县东镇", "100001", "0000-1000004"),
    Agency("T-202", "测试县西乡人民政府", "乡镇（街道）", "测试县西乡党政办", "测试县西乡", "100002", "0000-1000005"),
)


def workspace(root: Path = Path("/nonexistent"), roster: tuple[Agency, ...] = ROSTER) -> Workspace:
    return Workspace(root=Path(root), county=COUNTY, agencies=roster)


def complete_values(inputs: dict[str, int | Decimal]) -> dict[str, int | Decimal]:
    """Every spec cell: the given input cells, computed cells from their addends (spec), 0 elsewhere."""
    out: dict[str, int | Decimal] = {}

    def get(name: str) -> int | Decimal:
        if name in out:
            return out[name]
        c = spec.CELL[name]
        if c.computed:
            v = sum(get(a) for a in c.addends)
        else:
            v = inputs.get(name, Decimal(0) if c.kind == "money" else 0)
        out[name] = v
        return v

    for c in spec.CELLS:
        get(c.name)
    return out


def random_values(rng: random.Random) -> dict[str, int | Decimal]:
    """Figures that satisfy R1–R5: result rows and 结转 drawn, 本年新收 solved from 一+二 = （七）+四."""
    inputs: dict[str, int | Decimal] = {}
    for c in spec.table_cells("二"):
        if c.kind == "money":
            inputs[c.name] = Decimal(rng.randint(0, 999999)) / Decimal(10000)
        elif c.row_key != "regulations":
            inputs[c.name] = rng.randint(0, 60)
    result_rows = spec._total_and_parts(spec.T3_ROWS)[1]
    _, col_parts = spec._total_and_parts(spec.T3_COLUMNS)
    for col in col_parts:
        results = 0
        for rk in result_rows:
            v = rng.choice((0, 0, 0, 1, 2, 5)) if col != "natural" else rng.randint(0, 9)
            inputs[spec.cell_name("三", rk, col)] = v
            results += v
        over = rng.randint(0, 2)
        inputs[spec.cell_name("三", "carried_over", col)] = over
        carried_in = rng.randint(0, min(2, results + over))
        inputs[spec.cell_name("三", "carried_in", col)] = carried_in
        inputs[spec.cell_name("三", "new", col)] = results + over - carried_in
    for c in spec.table_cells("四"):
        if not c.computed:
            inputs[c.name] = rng.choice((0, 0, 1, 2))
    return complete_values(inputs)


def texts(name: str, year: int, rng: random.Random) -> dict[str, object]:
    f: dict[str, object] = {}
    for fs in spec.FIELDS:
        if fs.kind == "text" and fs.name.startswith("TXT_"):
            f[fs.name] = f"{name}{year}年{fs.label}的说明，第{rng.randint(1, 99)}项。"
    f["TXT_improvements"] = f"一是{name}加强培训。\n二是{name}完善制度。"
    f["TXT_fee_note"] = ""
    f["FEE_fee_charged"] = "否"
    f["FEE_fee_notices"] = None
    f["FEE_fee_notice_amount"] = None
    f["FEE_fee_collected"] = None
    return f


def make_agency(agency: Agency, year: int = 2024, seed: int = 0, values=None) -> AgencyData:
    rng = random.Random(f"{agency.code}-{year}-{seed}")
    fields = {f"INFO_{k}": v for k, v in agency.cover().items()}
    fields["INFO_report_year"] = year
    fields.update(texts(agency.name, year, rng))
    return AgencyData(
        code=agency.code,
        name=agency.name,
        category=agency.category,
        year=year,
        file=f"{agency.name}{year}年报.xlsx",
        values=values if values is not None else random_values(rng),
        fields=fields,
    )


def county_batch(year: int = 2024, roster: tuple[Agency, ...] = ROSTER, seed: int = 0) -> list[AgencyData]:
    return [make_agency(a, year, seed) for a in roster]


def seed_agency() -> AgencyData:
    """The seed town (集贤镇 2024) from its fixture JSON."""
    d = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    values = {}
    for c in spec.CELLS:
        v = d["figures"].get(c.name, 0)
        values[c.name] = Decimal(str(v)) if c.kind == "money" else int(v)
    return AgencyData(
        code=d["agency_code"],
        name=d["agency_name"],
        category=d["fields"]["INFO_category"],
        year=d["year"],
        file="seed_jixian_2024.xlsx",
        values=values,
        fields={k: ("" if v is None and k.startswith(("TXT_", "INFO_")) else v) for k, v in d["fields"].items()},
    )


def seed_json() -> dict:
    return json.loads(SEED_JSON.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ self-tests


def _rule_holds(rule: spec.Rule, values) -> bool:
    lhs = sum(values[n] for n in rule.lhs)
    rhs = sum(values[n] for n in rule.rhs) - sum(values[n] for n in rule.minus)
    return lhs == rhs


def test_synthetic_agencies_satisfy_every_agency_rule():
    for seed in range(5):
        for a in county_batch(seed=seed):
            assert set(a.values) == {c.name for c in spec.CELLS}
            for rule in spec.RULES:
                if rule.scope == "agency":
                    assert _rule_holds(rule, a.values), (a.code, rule.key)
            assert all(v >= 0 for v in a.values.values())


def test_seed_fixture_loads_with_every_cell():
    a = seed_agency()
    assert set(a.values) == {c.name for c in spec.CELLS}
    assert a.name == "集贤县集贤镇人民政府" and a.year == 2024


def test_money_printed_exactly_without_trailing_zeros():
    from decimal import Decimal

    from pipeline import render

    assert render.fmt(Decimal("1.7860")) == "1.786" and render.signed(Decimal("1.7860")) == "+1.786"
    assert render.fmt(Decimal("2.0000")) == "2" and render.fmt(Decimal("100.0253")) == "100.0253"
    assert render.fmt(Decimal("0.000001")) == "0.000001"  # never in exponent form
    assert render.fmt(Decimal("1E+2")) == "100" and render.fmt(Decimal("-0.0000")) == "0"
    assert render.percent(Decimal("0")) == "0.0%" and render.percent(Decimal("-0.00001")) == "0.0%"
    assert render.percent(Decimal("0.047")) == "+4.7%" and render.percent(None) == "—"
