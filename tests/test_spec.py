"""The format spec against FORMAT-2021.md, and the generated rules against data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline import spec

#: The official format as facts (a copy of ../shared/FORMAT-2021.md, kept in the repository so that these tests
#: run wherever it is checked out; test_reference_copies_are_current guards the copy).
FORMAT_MD = Path(__file__).resolve().parent / "fixtures" / "reference" / "FORMAT-2021.md"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="module")
def format_md() -> str:
    return FORMAT_MD.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["FORMAT-2021.md", "seed/集贤镇人民政府2024年政府信息公开工作年度报告.md"])
def test_reference_copies_are_current(name):
    shared = SHARED / name
    if not shared.is_file():
        pytest.skip(f"{shared} not found (shared/ is not beside this checkout): the copy cannot be compared")
    copy = FORMAT_MD.parent / Path(name).name
    assert copy.read_bytes() == shared.read_bytes(), f"tests/fixtures/reference/{copy.name} differs from {shared}"


def _code_block(md: str, heading: str) -> str:
    """The first ``` block after a '## <heading>' line."""
    start = md.index(heading)
    m = re.search(r"```\n(.*?)```", md[start:], re.S)
    assert m, heading
    return m.group(1)


def _labels_of_block(block: str) -> list[str]:
    """Labels in a FORMAT-2021.md layout block: split on '|', drop ASCII-paren annotations and [..] notes."""
    out = []
    for line in block.splitlines():
        line = re.sub(r"\[[^\]]*\]", "", line)
        for part in line.split("|"):
            part = re.sub(r"\s*\((?:colspan|rowspan|merged)[^)]*\)", "", part).strip()
            for token in part.split():
                if token and not re.fullmatch(r"[n ]+", token):
                    out.append(token)
    return out


def test_sections_match_format(format_md):
    block = _code_block(format_md, "## 2. The six sections")
    headings = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert headings == [s.heading for s in spec.SECTIONS]


def test_table2_labels_match_format(format_md):
    expected = _labels_of_block(_code_block(format_md, "## 4. Table 二"))
    ours: list[str] = []
    for block in spec.T2_BLOCKS:
        ours.append(block.title)
        ours.append(spec.T2_HEADER)
        ours.extend(c.label for c in block.columns)
        ours.extend(r.label for r in block.rows)
    assert ours == expected


def test_table3_rows_match_format(format_md):
    block = _code_block(format_md, "## 5. Table 三")
    rows_part = format_md[format_md.index("Rows (25 data rows, in order):") :]
    rows_block = re.search(r"```\n(.*?)```", rows_part, re.S).group(1)
    expected = _labels_of_block(rows_block)
    ours = [n.label for n in spec._walk(spec.T3_ROWS)]
    assert ours == expected
    assert sum(1 for top in spec.T3_ROWS for _ in top.leaves()) == 25
    header = _labels_of_block(block)
    assert spec.T3_CORNER in header
    for node in spec._walk(spec.T3_COLUMNS):
        assert node.label in header


def test_table3_column_order_matches_format(format_md):
    m = re.search(r"Column order: \*\*(.*?)\*\*", format_md)
    expected = [s.strip() for s in m.group(1).split(",")]
    assert [leaf.label for top in spec.T3_COLUMNS for leaf in top.leaves()] == expected


def test_table4_labels_match_format(format_md):
    expected = _labels_of_block(_code_block(format_md, "## 6. Table 四"))
    ours = []
    for top in spec.T4_GROUPS:
        ours.append(top.label)
    # the format block lists 行政复议, 行政诉讼 first, then the result and group labels line by line
    for label in ours + [n.label for n in spec._walk(spec.T4_GROUPS)]:
        assert label in expected
    assert expected.count("结果维持") == 3 and expected.count("总计") == 3


def test_cell_counts_and_unique_names():
    counts = {t: len(spec.table_cells(t)) for t in ("二", "三", "四")}
    assert counts == {"二": 10, "三": 175, "四": 15}
    names = list(spec.all_defined_names())
    assert len(names) == len(set(names))
    refs = list(spec.all_defined_names().values())
    assert len(refs) == len(set(refs)), "two defined names point at one cell"
    for name in names:
        assert re.fullmatch(r"[A-Z]+[0-9]?_[A-Za-z0-9_]+", name), name


def test_money_is_the_only_decimal_cell():
    assert [c.name for c in spec.CELLS if c.kind == "money"] == ["T2_fees_amount"]


def test_computed_cells_are_the_totals():
    computed = {c.name for c in spec.CELLS if c.computed}
    t3_total_col = {c.name for c in spec.table_cells("三") if c.column_key == "total"}
    t3_total_row = {c.name for c in spec.table_cells("三") if c.row_key == "total"}
    t4_total = {c.name for c in spec.table_cells("四") if c.column_key == "total"}
    assert computed == t3_total_col | t3_total_row | t4_total
    assert spec.CELL["T3_total_natural"].formula() == "=SUM(D7:D27)"
    assert spec.CELL["T3_new_total"].formula() == "=SUM(D5:I5)"
    assert spec.CELL["T4_litigation_after_total"].formula() == "=SUM(K5:N5)"


def test_rule_counts():
    by_id: dict[str, int] = {}
    for r in spec.RULES:
        by_id[r.id] = by_id.get(r.id, 0) + 1
    # R1, R3, R8: one per column of table 三 (7); R2: one per row (25); R5: one per group of 四 (3)
    assert by_id == {"R1": 7, "R2": 25, "R3": 7, "R5": 3, "R8": 7, "R6": 2}


def _consistent_values(seed: int = 1) -> dict[str, int]:
    """A valid agency: random leaf figures, totals computed, 结转 balancing R1."""
    import random

    rnd = random.Random(seed)
    v = {c.name: rnd.randint(0, 9) for c in spec.CELLS if not c.computed}
    for c in spec.CELLS:  # plain totals first, then the corner (it sums computed row cells)
        if c.computed and not any(spec.CELL[a].computed for a in c.addends):
            v[c.name] = sum(v[a] for a in c.addends)
    for c in spec.CELLS:
        if c.computed and c.name not in v:
            v[c.name] = sum(v[a] for a in c.addends)
    # make R1 hold per column: choose 上年结转 so that 一+二 = 七+四
    for col in [leaf.key for top in spec.T3_COLUMNS for leaf in top.leaves()]:
        out = v[spec.cell_name("三", "total", col)] + v[spec.cell_name("三", "carried_over", col)]
        v[spec.cell_name("三", "new", col)] = out  # everything this year was new …
        v[spec.cell_name("三", "carried_in", col)] = 0  # … so nothing came in
    return v


def _holds(rule: spec.Rule, v: dict[str, int]) -> bool:
    return sum(v[n] for n in rule.lhs) == sum(v[n] for n in rule.rhs) - sum(v[n] for n in rule.minus)


def test_generated_rules_hold_on_consistent_data_and_fail_on_any_single_change():
    v = _consistent_values()
    agency_rules = [r for r in spec.RULES if r.scope == "agency"]
    assert all(_holds(r, v) for r in agency_rules)
    for c in spec.CELLS:
        if c.table == "二":
            continue  # table 二 has no agency-level arithmetic
        broken = dict(v)
        broken[c.name] += 1
        failing = [r.key for r in agency_rules if not _holds(r, broken)]
        assert failing, f"changing {c.name} breaks no rule"
        assert all(c.name in spec.RULE[k].cells for k in failing)


def test_excel_check_expression():
    assert spec.RULE["R1.natural"].excel_check() == "D5+D6=D28+D29"
    with pytest.raises(ValueError):
        spec.RULE["R8.natural"].excel_check()


def test_old_format_labels():
    assert spec.is_old_format_label("本年新制作数量")
    assert spec.is_old_format_label(" 规范性文件 ")
    assert not spec.is_old_format_label("行政规范性文件")
    assert not spec.is_old_format_label("本年处理决定数量")
    assert spec.normalise_label("商业\n企业") == "商业企业"
    assert spec.normalise_label('3.危及"三安全一稳定"') == spec.normalise_label("3.危及“三安全一稳定”")


def test_spec_json_is_stable_and_complete():
    data = spec.as_json()
    text = json.dumps(data, ensure_ascii=False)
    assert data["format_version"] == "2021"
    assert len(data["cells"]) == 200
    cell = next(c for c in data["cells"] if c["name"] == "T2_licensing_decisions")
    assert cell == {
        "table": "二",
        "row": "行政许可",
        "column": "本年处理决定数量",
        "row_path": ["第二十条第（五）项"],
        "sheet": "二、主动公开",
        "cell": "B8",
        "name": "T2_licensing_decisions",
        "kind": "count",
        "unit": "件",
        "computed": False,
    }
    t4 = next(c for c in data["cells"] if c["name"] == "T4_litigation_direct_corrected")
    assert (t4["row"], t4["column"], t4["cell"]) == ("未经复议直接起诉", "结果纠正", "G5")
    assert "行政规范性文件" in text and "\"规范性文件\"" not in text
