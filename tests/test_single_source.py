"""One spec: no label of the format is typed in pipeline code outside pipeline/spec.py.

The labels are taken from the spec's own definitions — every node of the table trees (its label, the label
without its numbering, its short form), table and section headings, the template's fixed labels, sheet names,
field labels and hints, choice values, category labels, the money unit, the key figures, the plausibility
checks' and text claims' labels and the labels finding messages name — and every string constant of
pipeline/**/*.py but spec.py (f-string parts included, docstrings and comments not) is searched for them.
Constants defined twice in the past (MONEY_MAX_DECIMALS, MAX_FILE_NAME_BYTES, the short-label clip,
default_jobs) are defined once, and a finding's severity has one source.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from pipeline import findings as F
from pipeline import spec

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipeline"
SPEC = PIPELINE / "spec.py"

#: The reader's vocabulary of what people type after a number (件, 元, 万 / 万元) is still in the reader
#: (pipeline/read.py, being split into xlsx_reader.py / cells.py by a parallel change): these exact literals
#: there, and nothing else, are let through until the cell parser takes the money unit from the spec.
READER_MODULES = frozenset({"read.py", "cells.py", "xlsx_reader.py"})
READER_UNIT_LITERALS = frozenset({"万元"})


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.children)


def _nodes(fmt: spec.Format):
    d = fmt.definition
    for block in d.t2_blocks:
        yield from block.columns
        yield from block.rows
    for tree in (d.t3_columns, d.t3_rows, d.t4_groups, d.t4_results):
        yield from _walk(tree)


def format_labels(fmt: spec.Format) -> tuple[set[str], set[str]]:
    """(labels searched for anywhere in a string, labels matched only as a whole string or in quotes).

    The second set holds the labels of the template's own cover and text fields, choice values, category labels
    and the money unit: everyday words (报告年度, 是) that prose uses as words too; as a label they stand alone
    or quoted: "是", “报告年度”, （单位代码）, 单位：万元. Labels of one or two characters (规章, 总计) go there too.
    """
    anywhere: set[str] = set()
    for n in _nodes(fmt):
        anywhere |= {n.label, n.bare, n.brief, n.short}
    anywhere |= {b.title for b in fmt.definition.t2_blocks}
    anywhere |= {lab.text for lab in fmt.LABELS}
    for s in spec.SECTIONS:
        anywhere |= {s.title, s.heading, s.sheet, s.note}
    anywhere |= set(spec.SHEETS)
    anywhere |= {spec.FORMAT_TITLE, spec.REPORT_TITLE_SUFFIX, fmt.FORMAT_DOCUMENT, spec.OLD_FORMAT_DOCUMENT,
                 *spec.OLD_FORMAT_MARKERS, spec.T2_HEADER, spec.T3_CORNER, spec.R1_STATEMENT,
                 spec.T2_REFERENCE_HEADER, spec.CHECK_LABEL}
    anywhere |= {f.hint for f in fmt.FIELDS if len(f.hint) > 2}  # not the fee fields' bare units (件, 元)
    anywhere |= {k.label for k in fmt.KEY_FIGURES}
    anywhere |= {c.label for c in fmt.PLAUSIBILITY_CHECKS}
    anywhere |= {x.what for t in fmt.CLAIM_VOCABULARY.topics for x in t.slots + ((t.default,) if t.default else ())}
    not_labels = {"fee_section", "money_max_decimals"}  # a section's number, a count of decimals
    anywhere |= {v for k, v in fmt.MESSAGE_LABELS.items() if k not in not_labels}
    anywhere |= {f"{spec.MONEY_MAX_DECIMALS}位小数", f"{spec.OVERVIEW_MAX_CHARS}字"}
    alone = {f.label for f in fmt.FIELDS} | {c for f in fmt.FIELDS for c in f.choices} | set(spec.CATEGORY_LABELS)
    alone |= {c.unit for c in fmt.CELLS if c.kind == "money"}
    alone |= {x for x in anywhere if len(x) <= 2}
    anywhere = {x for x in anywhere if len(x) > 2} - alone
    alone.discard("")
    return anywhere, alone


def _all_labels() -> tuple[set[str], set[str]]:
    anywhere: set[str] = set()
    alone: set[str] = set()
    for fmt in {spec.load("2021"), *spec._FORMATS.values()}:
        a, b = format_labels(fmt)
        anywhere |= a
        alone |= b
    return anywhere - alone, alone


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings or bare string statements (documentation)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(id(node.value))
    return out


def string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant of ``source`` but its docstrings; an f-string gives its parts."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def labels_in(text: str, anywhere: set[str], alone: set[str]) -> list[str]:
    hits = [lab for lab in anywhere if lab in text]
    hits += [lab for lab in alone if text == lab or any(f"{a}{lab}{b}" in text for a, b in
                                                        (("“", "”"), ("（", "）"), ("单位：", "")))]
    return sorted(hits)


def _modules() -> list[Path]:
    return sorted(p for p in PIPELINE.rglob("*.py") if p != SPEC)


def test_no_format_label_in_pipeline_code_outside_spec():
    anywhere, alone = _all_labels()
    found = []
    for path in _modules():
        for line, text in string_literals(path.read_text(encoding="utf-8")):
            hits = labels_in(text, anywhere, alone)
            if path.name in READER_MODULES and text in READER_UNIT_LITERALS:
                continue
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{line}: {hits} in {text[:60]!r}")
    assert found == [], "labels of the format typed outside pipeline/spec.py:\n" + "\n".join(found)


def test_the_labels_come_from_the_spec_and_are_found():
    anywhere, alone = _all_labels()
    # the tree labels, their forms without numbering and their short forms, headings, sheets, fields, choices
    assert {"二、上年结转政府信息公开申请数量", "结转下年度继续办理", "上年结转", "复议后起诉", "结果纠正",
            "（六）其他处理", "申请人逾期未按收费通知要求缴纳费用", "一、总体情况", "二、主动公开",
            "国办公开办函〔2021〕30号", "（六）其他处理 3.其他", "4位小数"} <= anywhere
    assert {spec.YES, spec.NO, "规章", "总计", "万元", "报告年度", "县直部门"} <= alone
    # the search itself: a label inside a longer string, an f-string's parts, a quoted short label, the choice
    source = ('"""二、上年结转 in a docstring is documentation."""\n'
              'A = f"本年“二、上年结转”为 {x}"\nB = "表二“规章”行"\nC = x == "是"\nD = "规章制定权"\n')
    hits = {line: labels_in(text, anywhere, alone) for line, text in string_literals(source)}
    assert {"上年结转", "二、上年结转"} <= set(hits[2]) and hits[3] == ["规章"] and hits[4] == ["是"] and hits[5] == []
    assert 1 not in hits


# ---- constants defined once -----------------------------------------------------------------------------


def _definitions(name: str, paths: list[Path]) -> list[str]:
    """Where ``name`` is assigned at module level or defined as a function or class."""
    out = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name) and n.id == name:
                        out.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


CODE = sorted(PIPELINE.rglob("*.py")) + [ROOT / "tests" / "bench.py"]


@pytest.mark.parametrize("name, home", [
    ("MONEY_MAX_DECIMALS", "pipeline/spec.py"),
    ("MAX_FILE_NAME_BYTES", "pipeline/ooxml.py"),
    ("clip", "pipeline/spec.py"),
    ("default_jobs", "pipeline/parallel.py"),
])
def test_defined_once(name, home):
    where = _definitions(name, CODE)
    assert len(where) == 1 and where[0].startswith(home + ":"), where


def test_no_second_short_label_clip():
    assert _definitions("_short", CODE) == []
    assert spec.clip("一、本年新收政府信息公开申请数量", spec.RULE_TITLE_LABEL_CHARS) == "一、本年新收政府信息公开申请数量"
    assert spec.clip("5.要求行政机关确认或重新出具已获取信息") == "5.要求行政机关确认或重新出具已获取…"
    assert spec.clip("5.要求行政机关确认或重新出具已获取信息", spec.RULE_TITLE_LABEL_CHARS) == "5.要求行政机关确认或重新出具已…"


def test_the_core_count_is_taken_in_one_place():
    """default_jobs is the one place that asks how many cores there are (bench.py asks it too)."""
    users = [f"{p.relative_to(ROOT)}" for p in CODE if "sched_getaffinity" in p.read_text(encoding="utf-8")]
    assert users == ["pipeline/parallel.py"]


# ---- severity: one source ----------------------------------------------------------------------------------


def test_severity_of_rules_and_checks_comes_from_the_spec():
    fmt = spec.load("2021")
    assert set(fmt.SEVERITIES) == ({r.id for r in fmt.RULES} | {c.code for c in fmt.PLAUSIBILITY_CHECKS}
                                   | {fmt.CLAIM_VOCABULARY.code})
    for code, severity in fmt.SEVERITIES.items():
        entry = F.REGISTRY[code]
        assert entry.declared == F.FROM_SPEC, code  # the registry does not state it a second time
        assert entry.severity == severity, code
        assert F.make(code).severity == severity
    # and no other registry code claims to come from the spec
    assert {c.code for c in F.REGISTRY.values() if c.declared == F.FROM_SPEC} == set(fmt.SEVERITIES)
    assert {r.id: r.severity for r in fmt.RULES}["R6"] == "warning"
    assert {r.id: r.severity for r in fmt.RULES}["R1"] == "error"


# ---- messages take their labels from the format they run under -------------------------------------------------


def _renamed(d: spec.Definition) -> spec.Definition:
    """2021 with table 三's 上年结转 row renamed (and a different short form), and 规章 renamed."""

    def rename(node: spec.Node) -> spec.Node:
        children = tuple(rename(c) for c in node.children)
        if node.key == "carried_in":
            return dataclasses.replace(node, label="二、上年转入政府信息公开申请数量", short="上年转入", children=children)
        return dataclasses.replace(node, children=children)

    blocks = tuple(dataclasses.replace(b, rows=tuple(dataclasses.replace(r, label="地方规章")
                                                     if r.key == "regulations" else r for r in b.rows))
                   for b in d.t2_blocks)
    return dataclasses.replace(d, version="2021-test-renamed", t3_rows=tuple(rename(n) for n in d.t3_rows),
                               t2_blocks=blocks)


def test_messages_follow_the_labels_of_the_current_format():
    base = spec.load("2021")
    renamed = spec.register(_renamed(spec.DEFINITION_2021))
    before = F.make("R8", title="t", expected=1, actual=2).message
    assert "本年“二、上年结转”为 2，上年报告“四、结转下年度继续办理”为 1" in before
    with spec.using(renamed):
        r8 = F.make("R8", title="t", expected=1, actual=2)
        r11 = F.make("R11_REGULATIONS", actual="1/0/0")
        assert F.REGISTRY["R8"].title == "R8 上年转入等于上年报告的结转下年度"
        rule_title = spec.RULE["R8.natural"].title
    assert "本年“二、上年转入”为 2" in r8.message and "上年结转" not in r8.message
    assert "“地方规章”行" in r11.message
    assert "本年“二、上年转入”" in rule_title
    assert spec.current() is base and F.REGISTRY["R8"].title == "R8 上年结转等于上年报告的结转下年度"
    assert F.make("R8", title="t", expected=1, actual=2).message == before


def test_plausibility_checks_and_claims_are_data_of_the_format():
    fmt = spec.load("2021")
    checks = fmt.PLAUSIBILITY
    assert set(checks) == {"R9", "R11", "OTHER_HIGH"}
    assert checks["R9"].cells == (fmt.cell_name("三", "other_fee_unpaid", "total"),)
    assert checks["R11"].cells == tuple(fmt.cell_name("二", "regulations", c) for c in ("issued", "repealed", "in_force"))
    assert checks["OTHER_HIGH"].cells == (fmt.cell_name("三", "other_other", "total"),
                                          fmt.cell_name("三", "total", "total"))
    assert (checks["OTHER_HIGH"].min_count, checks["OTHER_HIGH"].max_share) == (5, 0.3)
    assert all(c.severity == "warning" for c in fmt.PLAUSIBILITY_CHECKS)
    v = fmt.CLAIM_VOCABULARY
    assert (v.code, v.severity) == ("TEXT_NUMBER_MISMATCH", "warning") and fmt.SEVERITIES[v.code] == "warning"
    slots = {x.key: x for t in v.topics for x in t.slots + ((t.default,) if t.default else ())}
    assert slots["litigation_total"].readings == ((fmt.cell_name("四", "litigation_direct", "total"),
                                                   fmt.cell_name("四", "litigation_after", "total")),)
    assert all(set(n for r in x.readings for n in r) <= set(fmt.CELL) for x in slots.values())
    # per format: the renamed variant's 规章 row is its own
    renamed = spec.register(_renamed(spec.DEFINITION_2021))
    assert renamed.PLAUSIBILITY["R11"].label == "地方规章" and checks["R11"].label == "规章"
