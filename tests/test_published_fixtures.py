"""Integrity of tests/fixtures/published (issue 14's importer test data), not the importer itself.

Each report there is a stored file plus ``<name>.source.json`` and ``<name>.expected.json``. These tests check
that the hand-read figures use the format's defined names and cover tables 二, 三 and 四, that they obey R1–R5
unless the expected file names the published break, and that every excerpt matches the offsets, length and
hash its source record states. A report in the 2019 试行 layout (``"format": "2019"`` in both records) has no
2021 cells; it names instead the 2019 labels that show its layout, and those must be in its text and be evidence
enough for ``spec.is_old_format``, while no 2021-format report shows that evidence.
"""

import hashlib
import html
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from pipeline import spec

HERE = Path(__file__).parent / "fixtures" / "published"
FMT = spec.load()
TABLE_CELLS = {c.name: c for c in FMT.CELLS}
DEFINED = set(FMT.all_defined_names())
NAMES = sorted(p.name[: -len(".expected.json")] for p in HERE.glob("*.expected.json"))
DATA_SUFFIXES = (".html", ".htm", ".txt", ".md")


def _expected(name):
    return json.loads((HERE / f"{name}.expected.json").read_text(encoding="utf-8"))


def _source(name):
    return json.loads((HERE / f"{name}.source.json").read_text(encoding="utf-8"))


def _data_file(name):
    found = [HERE / f"{name}{s}" for s in DATA_SUFFIXES if (HERE / f"{name}{s}").exists()]
    assert len(found) == 1, f"{name}: expected exactly one stored report file, found {found}"
    return found[0]


def _is_2019(name):
    return _expected(name).get("format") == "2019"


def _old_format_markers_in(name):
    """The 2019-format strings of the spec found in the stored report's text (tags dropped, labels normalised)."""
    text = spec.normalise_label(html.unescape(re.sub(r"<[^>]+>", "", _data_file(name).read_text(encoding="utf-8"))))
    return [m for m in spec.OLD_FORMAT_MARKERS if spec.normalise_label(m) in text]


def test_every_report_has_its_three_files():
    assert len(NAMES) >= 7
    for name in NAMES:
        _data_file(name)
        assert (HERE / f"{name}.source.json").exists(), name
    stray = {p.name for p in HERE.iterdir()} - {"README.md"} - {
        f"{n}{s}" for n in NAMES for s in (".expected.json", ".source.json", *DATA_SUFFIXES)}
    assert not stray, f"files without an expected.json: {sorted(stray)}"


@pytest.mark.parametrize("name", NAMES)
def test_expected_keys_are_defined_names_and_cover_the_tables(name):
    exp = _expected(name)
    assert set(exp) >= {"cells", "unreadable", "notes"}, name
    cells, unreadable = exp["cells"], exp["unreadable"]
    assert set(cells) <= DEFINED, sorted(set(cells) - DEFINED)
    assert set(unreadable) <= DEFINED, sorted(set(unreadable) - DEFINED)
    assert not set(cells) & set(unreadable), sorted(set(cells) & set(unreadable))
    assert isinstance(exp["notes"], str) and exp["notes"].strip()
    if exp.get("format") == "2019":
        assert not cells and not unreadable, f"{name}: a 2019-format report has no 2021 cells"
        return
    assert "format" not in exp, f"{name}: format {exp['format']!r} (only \"2019\" is marked)"
    assert set(TABLE_CELLS) <= set(cells) | set(unreadable), sorted(set(TABLE_CELLS) - set(cells) - set(unreadable))


@pytest.mark.parametrize("name", NAMES)
def test_the_2019_layout_is_marked_where_its_labels_are(name):  # FORMAT-2021.md §9
    exp, src = _expected(name), _source(name)
    found = _old_format_markers_in(name)
    if not _is_2019(name):
        assert "format" not in src, name
        assert not spec.is_old_format(found), f"{name} shows the 2019 labels {found} but is not marked 2019"
        return
    assert src.get("format") == "2019", f"{name}: the source record does not say it is the 2019 format"
    labels = exp["old_format_labels"]
    assert all(spec.old_format_evidence(label) for label in labels), labels
    assert spec.is_old_format(labels), labels
    assert labels == found, f"{name}: listed {labels}, in the text {found}"


def test_the_2019_check_can_fail():
    assert any(_is_2019(n) for n in NAMES)
    assert not spec.is_old_format(_old_format_markers_in("pingtan_2024_page"))
    assert not spec.is_old_format(["规范性文件", "处理决定数量"])  # the two 2021 near-misses alone


@pytest.mark.parametrize("name", NAMES)
def test_values_are_counts_and_a_decimal_amount(name):  # R4
    for cell, value in _expected(name)["cells"].items():
        if cell not in TABLE_CELLS:
            continue
        if TABLE_CELLS[cell].kind == "money":
            assert isinstance(value, str), (cell, value)
            try:
                assert Decimal(value) >= 0, (cell, value)
            except InvalidOperation:
                pytest.fail(f"{name}: {cell} = {value!r} is not a decimal")
        else:
            assert type(value) is int and value >= 0, (cell, value)


def _breaks(exp):
    cells = exp["cells"]
    broken = set()
    for rule in FMT.RULES:
        if rule.scope != "agency" or not set(rule.cells) <= set(cells):
            continue
        if sum(cells[n] for n in rule.lhs) != sum(cells[n] for n in rule.rhs) - sum(cells[n] for n in rule.minus):
            broken.add(rule.key)
    return broken


@pytest.mark.parametrize("name", NAMES)
def test_rules_hold_or_the_published_break_is_named(name):  # R1, R2, R3, R5
    exp = _expected(name)
    named = exp.get("rule_breaks", {})
    assert _breaks(exp) == set(named), f"{name}: rules broken {sorted(_breaks(exp))}, named {sorted(named)}"
    assert all(isinstance(why, str) and why.strip() for why in named.values())


def test_the_rule_check_can_fail():
    exp = _expected("pingtan_2023_page")
    exp["cells"]["T3_new_natural"] += 1
    assert {"R1.natural", "R2.new"} <= _breaks(exp)


@pytest.mark.parametrize("name", NAMES)
def test_source_record(name):
    src = _source(name)
    assert {"repo", "path", "commit", "agency", "year"} <= set(src), name
    if src["repo"] is not None:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", src["repo"]), src["repo"]
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]), src["commit"]
        assert src["path"]
    assert 2019 <= src["year"] <= 2025


@pytest.mark.parametrize("name", [n for n in NAMES if "excerpt" in _source(n)])
def test_excerpt_matches_its_record(name):
    ex = _source(name)["excerpt"]
    text = _data_file(name).read_text(encoding="utf-8")
    assert ex["is_excerpt"] is True
    assert ex["end_char"] - ex["start_char"] == ex["length_chars"] == len(text)
    assert 0 <= ex["start_char"] < ex["end_char"] <= ex["file_total_chars"]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == ex["sha256_utf8"]
