"""R10 in validation: the numbers a sample county workbook's texts state, read by pipeline/claims.py in the wordings
of real reports (tests/fixtures/text_claims), checked against its tables — one 提示 per wrong number, naming the
table cells, the sentence and both values, and saying which side to correct."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline import findings as F
from pipeline import ooxml, read, spec, validate, workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
C = spec.cell_name
CODE = "TEXT_NUMBER_MISMATCH"
NEW, CARRIED_IN = C("三", "new", "total"), C("三", "carried_in", "total")
NATURAL = C("三", "new", "natural")
GRANTED, PARTIAL = C("三", "granted", "total"), C("三", "partial", "total")
IN_FORCE = C("二", "normative_documents", "in_force")
#: Every text field of the variants says this (no number), but the one a test writes.
NEUTRAL = "本单位认真落实政府信息公开条例，持续完善工作机制。"


@pytest.fixture(scope="module")
def ws():
    return workspace.load(SAMPLE)


@pytest.fixture(scope="module")
def book(ws) -> Path:
    """The sample agency with a carried-in request (收到 N 件 has two readings there)."""
    for path in ws.files(YEAR):
        v = read.read_batch([path], YEAR).agency_data()[0].values
        if v[CARRIED_IN] and v[NEW] > 10 and v[GRANTED] + v[PARTIAL]:
            return path
    raise AssertionError("no sample agency with 上年结转")


@pytest.fixture(scope="module")
def table(book) -> dict:
    return read.read_batch([book], YEAR).agency_data()[0].values


def _cn(n: int) -> str:
    """23 → 二十三 (below 100)."""
    digits = "零一二三四五六七八九"
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else digits[tens]) + "十" if tens else "") + (digits[ones] if ones or not tens else "")


def variant(book: Path, tmp_path: Path, texts: dict[str, str], cells: dict[str, object] | None = None):
    """The sample workbook with every text field neutral but ``texts``, and ``cells`` typed in."""
    wb = load_workbook(book)
    names = spec.all_defined_names()
    values = {f.name: NEUTRAL for f in spec.FIELDS if f.kind == "text" and f.section} | texts | (cells or {})
    for name, value in values.items():
        sheet, ref = names[name]
        wb[sheet][ref] = value
    path = ooxml.save_workbook(wb, tmp_path / book.name)
    batch = read.read_batch([path], YEAR, base=tmp_path)
    return validate.validate(batch)


def mismatches(report) -> list[F.Finding]:
    return [f for f in report.findings if f.code == CODE]


def refs(*names: str) -> tuple[str, ...]:
    return tuple(spec.CELL[n].ref for n in names)


def test_the_sample_county_texts_agree_with_its_tables(ws):
    for year in (2023, 2024):
        report = validate.validate(read.read_batch(ws.files(year), year, ws), ws)
        assert [(f.agency_name, f.message) for f in mismatches(report)] == []


def test_the_code_keeps_the_format_severity():
    assert spec.SEVERITIES[CODE] == "warning" and F.REGISTRY[CODE].severity == "warning"


@pytest.mark.parametrize("wording", [
    "本年度收到{n}件申请，均已按期答复。",
    "本年度接收各类政府信息公开申请共计{n}件。",
    "全年办结依申请公开{done}件，收到依申请信息公开{n}件。",
])
def test_received_right_and_wrong(wording, book, table, tmp_path):
    new, both, done = table[NEW], table[NEW] + table[CARRIED_IN], table[C("三", "total", "total")]
    for n in (new, both):  # either reading is admissible
        assert mismatches(variant(book, tmp_path, {"TXT_on_request": wording.format(n=n, done=done)})) == []
    wrong = both + 7
    got = mismatches(variant(book, tmp_path, {"TXT_on_request": wording.format(n=wrong, done=done)}))
    assert len(got) == 1, [f.message for f in got]
    f = got[0]
    assert f.sheet == spec.CELL[NEW].sheet and f.cells == refs(NEW, CARRIED_IN)
    assert (f.actual, f.expected) == (str(wrong), f"{new} 或 {both}")
    assert f"为 {wrong}" in f.message and f"{new} 或 {both}" in f.message
    assert f"{wrong}件" in f.message  # the sentence is quoted
    text_sheet, text_cell = spec.all_defined_names()["TXT_on_request"]
    assert f"工作表“{text_sheet}”{text_cell}" in f.message and spec.FIELD["TXT_on_request"].label in f.message
    assert "+".join(refs(NEW, CARRIED_IN)) in f.message


def test_in_force_documents(book, tmp_path):
    """The real fault the issue found: text 现行有效行政规范性文件393件, table 470."""
    text = {"TXT_proactive": "截至年底，本机关现行有效行政规范性文件393件。"}
    got = mismatches(variant(book, tmp_path, text, {IN_FORCE: 470}))
    assert [(f.sheet, f.cells, f.actual, f.expected) for f in got] == [
        (spec.CELL[IN_FORCE].sheet, refs(IN_FORCE), "393", "470")]
    assert "393" in got[0].message and "470" in got[0].message
    assert mismatches(variant(book, tmp_path, text, {IN_FORCE: 393})) == []


def test_per_applicant_counts(book, table, tmp_path):
    natural = table[NATURAL]
    natural_cells = (NATURAL, C("三", "carried_in", "natural"))
    ok = f"本年度收到政府信息公开申请{table[NEW]}件，其中自然人{natural}件。"
    assert mismatches(variant(book, tmp_path, {"TXT_on_request": ok})) == []
    bad = f"本年度收到政府信息公开申请{table[NEW]}件，其中自然人{natural + 5}件。"
    got = mismatches(variant(book, tmp_path, {"TXT_on_request": bad}))
    assert len(got) == 1 and set(refs(NATURAL)) <= set(got[0].cells) <= set(refs(*natural_cells))
    assert got[0].actual == str(natural + 5) and str(natural) in got[0].expected.split(" 或 ")


def _pct(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_shares_are_checked_against_the_counts(book, table, tmp_path):
    shown = table[GRANTED] + table[PARTIAL]
    base = table[C("三", "total", "total")]
    right = f"本年度办结{base}件，予以公开及部分公开{shown}件，占{_pct(shown, base)}%。"
    assert mismatches(variant(book, tmp_path, {"TXT_on_request": right})) == []
    wrong = f"本年度办结{base}件，予以公开及部分公开{shown}件，占{_pct(shown + 3, base)}%。"
    got = mismatches(variant(book, tmp_path, {"TXT_on_request": wrong}))
    assert len(got) == 1, [f.message for f in got]
    f = got[0]
    assert f.actual == f"{_pct(shown + 3, base)}%" and f"{_pct(shown, base)}%" in f.expected.split(" 或 ")
    assert set(refs(GRANTED, PARTIAL)) <= set(f.cells) and "÷" in f.message


def test_chinese_numerals(book, table, tmp_path):
    new = table[NEW]
    assert mismatches(variant(book, tmp_path, {"TXT_on_request": f"本年度共收到{_cn(new)}件申请。"})) == []
    got = mismatches(variant(book, tmp_path, {"TXT_on_request": f"本年度共收到{_cn(new + 30)}件申请。"}))
    assert [(f.cells, f.actual) for f in got] == [(refs(NEW, CARRIED_IN), str(new + 30))]


def test_none_received(book, table, tmp_path):
    """未收到政府信息公开申请 says 新收 is 0."""
    got = mismatches(variant(book, tmp_path, {"TXT_on_request": "本年度未收到政府信息公开申请。"}))
    assert [(f.cells, f.actual, f.expected) for f in got] == [(refs(NEW), "0", str(table[NEW]))]


def test_every_section_text_is_read(book, table, tmp_path):
    """Not only 一: a number in 六、其他需要报告的事项 is checked too; the message names that field's cell."""
    got = mismatches(variant(book, tmp_path, {"TXT_other_matters": f"本年度共收到政府信息公开申请{table[NEW] + 40}件。"}))
    assert len(got) == 1
    sheet, cell = spec.all_defined_names()["TXT_other_matters"]
    assert f"工作表“{sheet}”{cell}" in got[0].message and got[0].sheet == spec.CELL[NEW].sheet


def test_the_hint_says_which_side_to_correct(book, table, tmp_path):
    text = {"TXT_on_request": f"本年度收到{table[NEW] + table[CARRIED_IN] + 7}件申请。"}
    balanced = variant(book, tmp_path, text)
    assert not [f for f in balanced.findings if f.severity == "error"]
    [ok_table] = mismatches(balanced)
    assert F.TEXT_NUMBER_HINTS[True] in ok_table.message and F.TEXT_NUMBER_HINTS[False] not in ok_table.message
    over = C("三", "carried_over", "natural")
    broken = variant(book, tmp_path, text, {over: table[over] + 1})  # 表三 R1 no longer holds
    assert any(f.code == "R1" for f in broken.findings)
    [bad_table] = mismatches(broken)
    assert F.TEXT_NUMBER_HINTS[False] in bad_table.message and F.TEXT_NUMBER_HINTS[True] not in bad_table.message
    assert bad_table.cells == ok_table.cells


def test_long_sentences_are_clipped_around_the_number():
    sentence = "甲" * 80 + "收到申请99件" + "乙" * 80
    q = validate._quote(sentence, "收到申请99件")
    assert "收到申请99件" in q and q.startswith("…") and q.endswith("…")
    assert len(q) <= validate.TEXT_QUOTE_CHARS + 2
    assert validate._quote("收到申请99件。", "收到申请99件") == "收到申请99件。"
