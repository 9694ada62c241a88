"""The sample county (examples/sample_county) and the seed fixture (tests/fixtures/seed_jixian_2024.*).

The workbooks are read back with openpyxl by defined name, independently of pipeline.read: computed cells
hold formulas without a cached value, so they are recomputed from spec.CELL[name].addends.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from pipeline import spec, workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
FIXTURES = ROOT / "tests" / "fixtures"
SEED_MD = FIXTURES / "reference" / "集贤镇人民政府2024年政府信息公开工作年度报告.md"  # copy of ../shared/seed


def _load_module(path: Path, name: str):
    mod_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module
    mod_spec.loader.exec_module(module)
    return module


make_sample = _load_module(ROOT / "examples" / "make_sample.py", "nianbao_make_sample")
make_seed = _load_module(FIXTURES / "make_seed.py", "nianbao_make_seed")

AGENCY_RULES = [r for r in spec.RULES if r.scope == "agency"]
CROSS_YEAR_RULES = [r for r in spec.RULES if r.scope == "cross_year"]
T3_INPUT = [c.name for c in spec.INPUT_CELLS if c.table == "三"]
COMPUTED = [c.name for c in spec.CELLS if c.computed]
YEARS = make_sample.YEARS


# --------------------------------------------------------------------------------------------------
# Reading


def _destination(wb, name: str):
    sheet, ref = next(iter(wb.defined_names[name].destinations))
    return wb[sheet][ref.replace("$", "")]


def _number(value, kind: str):
    if value is None:
        return None
    if kind == "money":
        return Decimal(str(value))
    return value


@cache
def read(path: Path) -> tuple[dict[str, object], dict[str, object]]:
    """(values, raw): every cell and field by defined name; computed cells recomputed from their addends.

    ``raw`` keeps what the computed cells hold in the file (their formulas).
    """
    wb = load_workbook(path)
    values: dict[str, object] = {}
    raw: dict[str, object] = {}
    for c in spec.CELLS:
        cell = _destination(wb, c.name)
        if c.computed:
            raw[c.name] = cell.value
        else:
            values[c.name] = _number(cell.value, c.kind)
    for f in spec.FIELDS:
        values[f.name] = _number(_destination(wb, f.name).value, f.kind)
    return recompute(values), raw


def recompute(values: dict[str, object]) -> dict[str, object]:
    out = dict(values)
    for c in spec.CELLS:
        if c.computed:
            out[c.name] = sum((out[a] for a in c.addends), 0)
    return out


def holds(rule: spec.Rule, v, last=None) -> bool:
    lhs = sum(v[n] for n in rule.lhs)
    rhs = sum(v[n] for n in rule.rhs) - sum(v[n] for n in rule.minus)
    if rule.last_year:
        rhs += sum(last[n] for n in rule.last_year)
    return lhs == rhs


def broken(v) -> list[str]:
    return [r.key for r in AGENCY_RULES if not holds(r, v)]


def sample_path(agency: workspace.Agency, year: int) -> Path:
    return SAMPLE / str(year) / make_sample.workbook_name(agency, year)


@cache
def ws() -> workspace.Workspace:
    return workspace.load(SAMPLE)


def sample_books() -> list[tuple[workspace.Agency, int, Path]]:
    return [(a, y, sample_path(a, y)) for a in ws().agencies for y in YEARS]


BOOK_IDS = [f"{a.code}-{y}" for a in make_sample.AGENCIES for y in YEARS]


# --------------------------------------------------------------------------------------------------
# Roster and files


def test_county_and_roster():
    w = ws()
    assert w.county.name == "示例县"
    assert w.county.office == "示例县人民政府办公室"
    for key in ("government", "address", "postcode", "phone", "publish_channel", "publish_url"):
        assert getattr(w.county, key), key
    assert 10 <= len(w.agencies) <= 14
    cats = [a.category for a in w.agencies]
    assert set(cats) == set(spec.CATEGORY_LABELS)
    county_gov, dept, town = (c.label for c in spec.CATEGORIES)
    assert cats.count(county_gov) == 1 and cats.count(dept) >= 5 and cats.count(town) >= 6
    assert w.agencies == make_sample.AGENCIES
    assert w.years() == list(YEARS)


def test_roster_and_files_match_one_to_one():
    w = ws()
    for year in YEARS:
        expected = {sample_path(a, year) for a in w.agencies}
        assert set(w.files(year)) == expected
        for a in w.agencies:
            v, _ = read(sample_path(a, year))
            assert v["INFO_agency_code"] == a.code
            assert v["INFO_agency_name"] == a.name
            assert v["INFO_category"] == a.category
            assert int(v["INFO_report_year"]) == year


# --------------------------------------------------------------------------------------------------
# Figures


@pytest.mark.parametrize("agency,year,path", sample_books(), ids=BOOK_IDS)
def test_agency_rules_hold(agency, year, path):
    v, raw = read(path)
    assert broken(v) == []
    for name in COMPUTED:  # totals are live formulas, as the template writes them
        assert raw[name] == spec.CELL[name].formula(), name
    for c in spec.INPUT_CELLS:  # R4
        x = v[c.name]
        if c.kind == "money":
            assert isinstance(x, Decimal) and x >= 0 and -x.as_tuple().exponent <= 4, (c.name, x)
        else:
            assert isinstance(x, int) and not isinstance(x, bool) and x >= 0, (c.name, x)
    # R11: county bodies make no 规章
    assert [v[spec.cell_name("二", "regulations", col)] for col in make_sample.T2_DOC_COLS] == [0, 0, 0]


@pytest.mark.parametrize("agency", make_sample.AGENCIES, ids=lambda a: a.code)
def test_cross_year_rules_hold(agency):
    """R8 (上年结转 = 上年结转下年度) and R6 (现行有效件数 chain) between 2023 and 2024."""
    last, _ = read(sample_path(agency, YEARS[0]))
    this, _ = read(sample_path(agency, YEARS[1]))
    assert [r.key for r in CROSS_YEAR_RULES if not holds(r, this, last)] == []
    assert {r.id for r in CROSS_YEAR_RULES} == {"R6", "R8"}


def test_sample_is_realistic():
    books = {(a.code, y): read(p)[0] for a, y, p in sample_books()}

    def total(row: str, col: str = "total", table: str = "三") -> int:
        return sum(v[spec.cell_name(table, row, col)] for v in books.values())

    groups = {key: leaves for key, _, leaves in make_sample.RESULT_GROUPS}
    assert sum(total(leaf) for leaf in groups["withheld"]) > 0  # 不予公开
    assert sum(total(leaf) for leaf in groups["unavailable"]) > 0  # 无法提供
    assert total("reconsideration", "total", "四") >= 1
    assert total("litigation_direct", "total", "四") + total("litigation_after", "total", "四") >= 1
    assert total("carried_over") > 0  # R8 is not trivially 0 = 0
    for (code, year), v in books.items():
        assert v["T3_new_total"] + v["T3_carried_in_total"] > 0 or code in ("SLX-204", "SLX-205"), code
    # the natural-resources bureau gets the most applications, small townships few
    new = {code: v["T3_new_total"] for (code, y), v in books.items() if y == YEARS[1]}
    assert max(new, key=new.get) == "SLX-102"
    assert new["SLX-205"] <= 3
    fees = [v["T2_fees_amount"] for v in books.values() if v["T2_fees_amount"] != 0]
    assert len(fees) >= 4 and any(-f.as_tuple().exponent == 4 for f in fees)


@cache
def _two_years(code: str) -> tuple[dict, dict]:
    agency = next(a for a in make_sample.AGENCIES if a.code == code)
    return read(sample_path(agency, YEARS[0]))[0], read(sample_path(agency, YEARS[1]))[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    code=st.sampled_from([a.code for a in make_sample.AGENCIES]),
    year_index=st.sampled_from([0, 1]),
    name=st.sampled_from(T3_INPUT),
    delta=st.integers(min_value=1, max_value=9),
)
def test_changing_one_table3_input_breaks_a_rule(code, year_index, name, delta):
    """Any change of one input cell of table 三 breaks an agency rule (totals recomputed, as the reader does)."""
    v = dict(_two_years(code)[year_index])
    v[name] = v[name] + delta
    assert broken(recompute(v)), name


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from([a.code for a in make_sample.AGENCIES]),
    name=st.sampled_from(COMPUTED),
    delta=st.integers(min_value=-3, max_value=9).filter(bool),
)
def test_overwriting_a_total_breaks_a_rule(code, name, delta):
    """A total typed over (formula replaced by a number) breaks R1, R2, R3 or R5."""
    v = dict(_two_years(code)[1])
    v[name] = v[name] + delta
    assert broken(v), name


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from([a.code for a in make_sample.AGENCIES]),
    col=st.sampled_from(make_sample.T2_DOC_COLS),
    delta=st.integers(min_value=1, max_value=5),
)
def test_changing_table2_documents_breaks_r6(code, col, delta):
    """Table 二 has no in-year identity: a change of 制发/废止/现行有效 breaks the cross-year chain R6."""
    last, this = _two_years(code)
    this = dict(this)
    name = spec.cell_name("二", make_sample.T2_NORMATIVE, col)
    this[name] += delta
    assert [r.key for r in CROSS_YEAR_RULES if not holds(r, this, last)] == [f"R6.{make_sample.T2_NORMATIVE}"]


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from([a.code for a in make_sample.AGENCIES]),
    name=st.sampled_from([c.name for c in spec.INPUT_CELLS if c.table == "四"]),
    delta=st.integers(min_value=1, max_value=3),
)
def test_changing_table4_breaks_the_text_quote(code, name, delta):
    """Table 四's totals are formulas (R5 holds by construction); a changed count contradicts 一 (R10)."""
    v = dict(_two_years(code)[1])
    v[name] += delta
    assert quoted_numbers_mismatch(recompute(v))


# --------------------------------------------------------------------------------------------------
# Texts and fields

_QUOTES = {
    r"(?:共收到|新收)政府信息公开申请(\d+)件": lambda v: v["T3_new_total"],
    r"未收到政府信息公开申请()": lambda v: v["T3_new_total"],
    r"上年结转(?:申请)?(\d+)件": lambda v: v["T3_carried_in_total"],
    r"办结(\d+)件": lambda v: v["T3_total_total"],
    r"结转下年度继续办理(\d+)件": lambda v: v["T3_carried_over_total"],
    r"行政复议(\d+)件": lambda v: v["T4_reconsideration_total"],
    r"行政诉讼(\d+)件": lambda v: v["T4_litigation_direct_total"] + v["T4_litigation_after_total"],
}


def quoted_numbers_mismatch(v) -> list[str]:
    """R10: the numbers section 一 quotes, compared with the tables."""
    text = "".join(str(v[n] or "") for n in make_sample.OVERVIEW_FIELDS)
    out = []
    for pattern, cell in _QUOTES.items():
        for m in re.finditer(pattern, text):
            if int(m.group(1) or 0) != cell(v):
                out.append(f"{m.group(0)} ≠ {cell(v)}")
    for key, short, leaves in make_sample.RESULT_GROUPS:
        for m in re.finditer(rf"其中[^；。]*?{short}(\d+)件", text):
            n = sum(v[spec.cell_name("三", leaf, "total")] for leaf in leaves)
            if int(m.group(1)) != n:
                out.append(f"{short}{m.group(1)} ≠ {n}")
    for row, (node, col) in make_sample.T2_DECISION_ROWS.items():
        for m in re.finditer(rf"{node.label}决定(\d+)件", text):
            if int(m.group(1)) != v[spec.cell_name("二", row, col)]:
                out.append(m.group(0))
    for m in re.finditer(r"现行有效(?:的)?(\d+)件", text):
        if int(m.group(1)) != v[spec.cell_name("二", make_sample.T2_NORMATIVE, make_sample.T2_IN_FORCE)]:
            out.append(m.group(0))
    return out


def test_texts_quote_the_tables():
    seen_quotes = 0
    for agency, year, path in sample_books():
        v, _ = read(path)
        assert quoted_numbers_mismatch(v) == [], (agency.name, year)
        assert re.search(r"(?:共收到|新收)政府信息公开申请\d+件|未收到政府信息公开申请", v["TXT_on_request"])
        assert re.search(r"行政复议\d+件", v["TXT_on_request"]) and re.search(r"行政诉讼\d+件", v["TXT_on_request"])
        seen_quotes += 1
    assert seen_quotes == len(make_sample.AGENCIES) * len(YEARS)


def test_texts_are_unique_dated_and_short():
    seen: dict[str, tuple] = {}
    for agency, year, path in sample_books():
        v, _ = read(path)
        for f in spec.FIELDS:
            if f.name.startswith("TXT_"):
                text = v[f.name]
                assert isinstance(text, str) and text.strip(), (agency.name, year, f.name)
                for other in re.findall(r"(?<!\d)(?:19|20)\d{2}(?!\d)", text):
                    assert int(other) == year, (agency.name, year, f.name, other)
                for paragraph in text.split("\n"):
                    assert paragraph.strip() == paragraph and paragraph, (agency.name, year, f.name)
                    assert paragraph not in seen, (agency.name, year, f.name, seen.get(paragraph))
                    seen[paragraph] = (agency.name, year, f.name)
        overview = sum(len(v[n]) for n in make_sample.OVERVIEW_FIELDS)
        assert overview < spec.OVERVIEW_MAX_CHARS, (agency.name, year, overview)


def test_texts_are_not_alike():
    """No 雷同: 3-gram similarity (figures folded) stays below 0.9 between agencies and between an agency's years."""
    names = [f.name for f in spec.FIELDS if f.name.startswith("TXT_")]
    books = {(a.code, y): read(p)[0] for a, y, p in sample_books()}
    worst = 0.0
    for name in names:
        for (ca, ya), va in books.items():
            for (cb, yb), vb in books.items():
                if (ca, ya) < (cb, yb) and (ya == yb or ca == cb):
                    sim = make_sample.similarity(va[name], vb[name])
                    assert sim < 0.9, (name, ca, ya, cb, yb, sim)
                    worst = max(worst, sim)
    assert worst > 0.3  # the check compares real prose


def test_problems_differ_from_last_year():
    """Section 五 is not copied forward: no sentence of 2024 problems/improvements reappears from 2023."""
    for agency in make_sample.AGENCIES:
        last, this = _two_years(agency.code)
        for name in ("TXT_problems", "TXT_improvements"):
            a = {s[2:] for s in re.split(r"[；。\n]", last[name]) if s}
            b = {s[2:] for s in re.split(r"[；。\n]", this[name]) if s}
            assert not (a & b), (agency.name, name, a & b)


def test_cover_and_fee_fields():
    fee = make_sample.FEE_FIELDS
    for agency, year, path in sample_books():
        v, _ = read(path)
        for f in spec.fields(sheet=spec.SHEET_INFO):
            assert v[f.name] not in (None, ""), (agency.name, year, f.name)
        assert v["META_format_version"]
        unpaid = v[spec.cell_name("三", "other_fee_unpaid", "total")]
        charged = v[fee["fee_charged"]]
        assert charged in spec.FIELD[fee["fee_charged"]].choices
        assert v[fee["fee_note"]]
        if charged == make_sample.NO:
            assert unpaid == 0 and "未" in v[fee["fee_note"]]
        else:
            assert v[fee["fee_notices"]] >= unpaid  # R9
            assert Decimal(str(v[fee["fee_collected"]])) <= Decimal(str(v[fee["fee_notice_amount"]]))
    charged = [read(p)[0][fee["fee_charged"]] for _, _, p in sample_books()]
    assert charged.count(make_sample.YES) >= 1
    # cover fields that change with the year differ between the two years of an agency
    for agency in make_sample.AGENCIES:
        last, this = _two_years(agency.code)
        assert last["INFO_fill_date"] != this["INFO_fill_date"]


def test_generated_values_match_the_workbooks():
    """The pure generator and the written workbooks agree on every input cell and field."""
    data = make_sample.generate()
    for agency, year, path in sample_books():
        v, _ = read(path)
        expected = data[(agency.code, year)]
        for c in spec.CELLS:
            assert v[c.name] == expected[c.name], (agency.name, year, c.name)
        for f in spec.FIELDS:
            if f.kind == "text" and f.name in expected:
                assert v[f.name] == expected[f.name], (agency.name, year, f.name)


# --------------------------------------------------------------------------------------------------
# The seed fixture


@pytest.fixture(scope="module")
def seed():
    v, raw = read(FIXTURES / "seed_jixian_2024.xlsx")
    expected = json.loads((FIXTURES / "seed_jixian_2024.json").read_text(encoding="utf-8"))
    return v, raw, expected


def test_seed_figures(seed):
    v, raw, expected = seed
    assert broken(v) == []
    for c in spec.CELLS:
        assert v[c.name] == 0 == expected["figures"][c.name], c.name
    for name in COMPUTED:
        assert raw[name] == spec.CELL[name].formula()


def test_seed_fields_and_texts(seed):
    v, _, expected = seed
    assert expected["year"] == 2024 and expected["agency_name"] == "集贤县集贤镇人民政府"
    for f in spec.FIELDS:
        want = expected["fields"][f.name]
        got = v[f.name]
        if f.name == "INFO_report_year":
            assert int(got) == want
        elif f.name == "META_format_version":
            assert got
        elif want is None:
            assert got in (None, ""), f.name
        else:
            assert got == want, f.name
    assert v["INFO_publish_url"] == "http://www.jixian.gov.cn/jx/184/zfxxgknb.shtml"
    assert v["INFO_postcode"] == "155100" and v["INFO_phone"] == "0469-4914003"
    assert v["INFO_category"] in spec.CATEGORY_LABELS
    assert v["TXT_other_matters"] == "无。"
    assert v["TXT_improvements"].count("\n") == 2
    for name, paragraphs in expected["texts"].items():
        assert v[name].split("\n") == paragraphs
    assert expected["paragraphs"] == [p for ps in expected["paragraphs_by_section"].values() for p in ps]
    assert len(expected["paragraphs"]) == 11


def test_seed_paragraphs_are_verbatim(seed):
    md = SEED_MD.read_text(encoding="utf-8")
    _, _, expected = seed
    for paragraph in expected["paragraphs"]:
        assert paragraph in md, paragraph[:30]
    opening = md.split("\n## ")[0]
    for key in ("contact_office", "address", "postcode", "phone", "publish_url"):
        assert getattr(make_seed.AGENCY, key) in opening, key
    assert make_seed.AGENCY.publish_channel in re.sub(r"\s*-\s*", "-", opening)


# --------------------------------------------------------------------------------------------------
# Reproducibility


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_regenerating_the_sample_is_byte_identical(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_sample.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, cwd=tmp_path)
    fresh, committed = _files(tmp_path), _files(SAMPLE)
    assert sorted(fresh) == sorted(committed)
    changed = [k for k in fresh if fresh[k] != committed[k]]
    assert changed == [], "committed sample differs from a fresh run (pipeline.template changed?): run `make samples`"


def test_regenerating_the_seed_is_byte_identical(tmp_path):
    subprocess.run([sys.executable, str(FIXTURES / "make_seed.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, cwd=tmp_path)
    for name in ("seed_jixian_2024.xlsx", "seed_jixian_2024.json"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), (
            f"{name} differs from a fresh run: run `python tests/fixtures/make_seed.py`")
