"""Validation: one defect per workbook, each proven by its finding code and cell(s)."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import findings as F
from pipeline import cells, read, spec, validate, workspace, xlsx_reader

ROOT = Path(__file__).resolve().parents[1]
C = spec.cell_name


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = D.write_workspace(tmp_path_factory.mktemp("ws") / "county")
    return workspace.load(root)


@pytest.fixture(scope="module")
def valid(ws) -> Path:
    return ws.year_dir(D.YEAR) / f"{D.AGENCIES[0].name}{D.YEAR}年报.xlsx"


def run(paths: list[Path], ws=None, previous=None, year=D.YEAR):
    batch = read.read_batch(paths, year, ws, base=paths[0].parent if paths else None)
    return batch, validate.validate(batch, ws, previous)


def test_valid_workspace_is_clean(ws):
    _batch, report = run(ws.files(D.YEAR), ws)
    assert [(f.code, f.file, f.cells) for f in report.findings] == []
    assert [a.verdict for a in report.agencies] == [validate.VERDICT_PASS] * len(D.AGENCIES)
    assert report.passed == [a.code for a in D.AGENCIES]
    assert report.ok


@pytest.mark.parametrize("defect", D.DEFECTS, ids=[d.key for d in D.DEFECTS])
def test_defect(defect: D.Defect, valid, ws, tmp_path):
    path = D.make_defect(defect.key, valid, tmp_path)
    batch, report = run([path], ws if defect.needs_workspace else None)
    hits = [f for f in report.findings if f.code == defect.code]
    assert hits, [(f.code, f.cells) for f in report.findings]
    if defect.sheet:
        assert any(f.sheet == defect.sheet for f in hits), [(f.sheet, f.cells) for f in hits]
    if defect.cells:
        assert any(set(defect.cells) <= set(f.cells) for f in hits), [f.cells for f in hits]
    assert all(f.severity == F.REGISTRY[defect.code].severity for f in hits)
    verdict = batch.files[0].status
    assert verdict == ("read" if defect.read else "rejected")
    if not defect.read:
        assert batch.records == [] and defect.code in batch.files[0].codes
    # the defect's workbook is never 通过
    verdicts = {a.verdict for a in report.agencies}
    assert validate.VERDICT_PASS not in verdicts


def test_only_the_defect_is_reported_for_cell_defects(valid, tmp_path):
    """A coerced "５" gives one 提示 and nothing else; its value is read as 5 (R1 still holds)."""
    path = D.make_defect("fullwidth_digit", valid, tmp_path)
    batch, report = run([path])
    assert [(f.code, f.cells) for f in report.findings] == [("CELL_COERCED", (spec.CELL[C("三", "new", "natural")].ref,))]
    assert report.agencies[0].verdict == validate.VERDICT_WARN
    assert report.passed == [D.AGENCIES[0].code]
    data = batch.agency_data()[0]
    assert data.values[C("三", "new", "natural")] == D.V[C("三", "new", "natural")]


def test_rule_findings_name_both_sides(valid, tmp_path):
    path = D.make_defect("r1_broken", valid, tmp_path)
    _, report = run([path])
    r1 = [f for f in report.findings if f.code == "R1"]
    rule = spec.RULE["R1.natural"]
    # the input cells behind both sides, never the locked （七）总计 formula
    (natural,) = [f for f in r1 if f.cells == tuple(spec.CELL[n].ref for n in rule.inputs)]
    assert spec.CELL[C("三", "total", "natural")].ref not in natural.cells
    lhs = D.VT[C("三", "new", "natural")] + D.VT[C("三", "carried_in", "natural")]
    assert f"= {lhs}，" in natural.message and f"= {lhs + 1}，" in natural.message and "相差 1" in natural.message
    # either side may hold the wrong cell: no 应为/实为
    assert (natural.expected, natural.actual) == ("", "")


def test_typed_over_total_names_the_total_and_its_addends(valid, tmp_path):
    path = D.make_defect("r2_total_typed_over", valid, tmp_path)
    batch, report = run([path])
    (r2,) = [f for f in report.findings if f.code == "R2"]
    name = C("三", "granted", "total")
    assert f"填为 {D.VT[name] + 1}，" in r2.message and f"之和为 {D.VT[name]}，" in r2.message
    assert "相差 1" in r2.message and (r2.expected, r2.actual) == ("", "")
    # the total lost its formula (the cell to restore), and the cells it sums
    assert r2.cells == tuple(spec.CELL[n].ref for n in spec.RULE["R2.granted"].cells)
    # the record carries the recomputed total, never the typed one
    assert batch.agency_data()[0].values[name] == D.VT[name]


def test_row_inserted_values_still_read_by_name(valid, tmp_path):
    path = D.make_defect("row_inserted", valid, tmp_path)
    batch, report = run([path])
    assert {f.code for f in report.findings} == {"STRUCTURE_CHANGED"}
    values = batch.agency_data()[0].values
    assert all(values[n] == D.VT[n] for n in D.VT)


def test_other_format_file_names_are_rejected_with_a_reason(tmp_path, valid):
    xls = tmp_path / "单位.xls"
    xls.write_bytes(D.OLE_XLS)
    csv = tmp_path / "单位.csv"
    csv.write_text("a,b\n", encoding="utf-8")
    batch, _report = run([xls, csv])
    assert [(v.file, v.status, v.codes) for v in batch.files] == [
        ("单位.csv", "rejected", ("FILE_NOT_XLSX",)),
        ("单位.xls", "rejected", ("FILE_XLS",)),
    ]
    assert all(v.reason for v in batch.files)


# ---- agencies -------------------------------------------------------------------------------------------


def test_duplicate_names_both_files(ws, valid, tmp_path):
    copy = tmp_path / "copy.xlsx"
    copy.write_bytes(valid.read_bytes())
    batch, report = run([valid, copy], ws)
    dup = [f for f in report.findings if f.code == "AGENCY_DUPLICATE"]
    assert sorted(f.file for f in dup) == sorted(v.file for v in batch.files)
    assert all(valid.name in f.actual and "copy.xlsx" in f.actual for f in dup)
    assert report.verdict(D.AGENCIES[0].code) == validate.VERDICT_FAIL


def test_missing_roster_agency(ws, valid):
    _, report = run([valid], ws)
    missing = [f for f in report.findings if f.code == "AGENCY_MISSING"]
    assert [f.agency_code for f in missing] == [D.AGENCIES[1].code]
    assert report.missing == [D.AGENCIES[1].code]
    assert report.verdict(D.AGENCIES[1].code) == validate.VERDICT_MISSING
    assert not report.ok


def test_rejected_file_is_attributed_by_file_name(ws, valid, tmp_path):
    broken = tmp_path / f"{D.AGENCIES[1].name}2024年报.xlsx"
    broken.write_bytes(b"not a zip")
    _batch, report = run([valid, broken], ws)
    assert report.missing == []
    assert report.verdict(D.AGENCIES[1].code) == validate.VERDICT_FAIL
    (f,) = [f for f in report.findings if f.code == "FILE_CORRUPT"]
    assert f.agency_code == D.AGENCIES[1].code


def test_lock_and_other_files_are_ignored(tmp_path, valid):
    lock = tmp_path / "~$单位.xlsx"
    lock.write_bytes(b"\0" * 165)
    txt = tmp_path / "说明.txt"
    txt.write_text("x", encoding="utf-8")
    batch, report = run([lock, txt, valid])
    status = {v.file: v.status for v in batch.files}
    assert status == {"~$单位.xlsx": "ignored", "说明.txt": "ignored", valid.name: "read"}
    assert report.findings == []


# ---- cross-year -----------------------------------------------------------------------------------------


def _previous(tmp_path, values: dict, fields: dict | None = None):
    agency = D.AGENCIES[0]
    prev = D.write_valid(tmp_path / "prev" / "a.xlsx", agency, D.YEAR - 1, values, fields)
    return read.read_batch([prev], D.YEAR - 1, None)


def _prev_fields(values):
    """Last year's fields with clearly different prose (no 年年雷同)."""
    f = D.field_values(D.AGENCIES[0], D.YEAR - 1, values)
    for k in list(f):
        if k.startswith("TXT_") and len(f[k]) > 10:
            f[k] = f"{D.YEAR - 1}年度该项工作情况另行说明，第{k}项。"
    return f


def test_previous_year_that_chains_is_clean(valid, tmp_path):
    values = D.previous_figures()
    previous = _previous(tmp_path, values, _prev_fields(values))
    _, report = run([valid], previous=previous)
    assert [(f.code, f.cells) for f in report.findings] == []


def test_r8_carry_over_must_match_last_year(valid, tmp_path):
    prev_values = D.previous_figures()
    col = C("三", "carried_over", "business")
    prev_values[col] += 1
    prev_values[C("三", "new", "business")] += 1
    previous = _previous(tmp_path, prev_values, _prev_fields(prev_values))
    _, report = run([valid], previous=previous)
    r8 = [f for f in report.findings if f.code == "R8"]
    def t3(r, c):
        return spec.CELL[C("三", r, c)].ref
    carried_in = D.VT[C("三", "carried_in", "business")]
    total_in = D.VT[C("三", "carried_in", "total")]
    # last year's report is the side known to be right: 应为 is its figure; the 总计 column names its inputs
    every_column = tuple(t3("carried_in", c.column_key) for c in spec.INPUT_CELLS
                         if c.table == "三" and c.row_key == "carried_in")
    assert sorted((f.cells, f.expected, f.actual) for f in r8) == sorted([
        ((t3("carried_in", "business"),), str(carried_in + 1), str(carried_in)),
        (every_column, str(total_in + 1), str(total_in)),
    ])
    assert all("相差 1" in f.message for f in r8)
    assert all(f.severity == "error" for f in r8)


def test_r6_and_year_on_year_jump_are_warnings(valid, tmp_path):
    prev_values = D.previous_figures()
    prev_values[C("二", "normative_documents", "in_force")] = 40
    prev_values[C("二", "licensing", "decisions")] = 1
    previous = _previous(tmp_path, prev_values, _prev_fields(prev_values))
    _, report = run([valid], previous=previous)
    got = {(f.code, f.cells) for f in report.findings}
    def t2(r, c):
        return spec.CELL[C("二", r, c)].ref
    assert ("R6", (t2("normative_documents", "in_force"), t2("normative_documents", "issued"),
                   t2("normative_documents", "repealed"))) in got
    assert ("YOY_JUMP", (t2("licensing", "decisions"),)) in got
    assert all(f.severity == "warning" for f in report.findings)


def test_text_copied_from_last_year(valid, tmp_path):
    values = D.previous_figures()
    same = D.field_values(D.AGENCIES[0], D.YEAR - 1, values)  # same prose; only the years and figures differ
    previous = _previous(tmp_path, values, same)
    _, report = run([valid], previous=previous)
    cells = {f.cells[0] for f in report.findings if f.code == "TEXT_SAME_AS_LAST_YEAR"}
    assert spec.FIELD["TXT_problems"].ref in cells and spec.FIELD["TXT_overview"].ref in cells


def test_text_same_as_another_agency(tmp_path):
    a, b = D.AGENCIES
    values = D.figures()
    fields_a = D.field_values(a, D.YEAR, values)
    fields_b = {**D.field_values(b, D.YEAR, values), "TXT_management": fields_a["TXT_management"]}
    pa_ = D.write_valid(tmp_path / "a.xlsx", a, D.YEAR, values, fields_a)
    pb = D.write_valid(tmp_path / "b.xlsx", b, D.YEAR, values, fields_b)
    _, report = run([pa_, pb])
    hits = [f for f in report.findings if f.code == "TEXT_SAME_AS_OTHER"]
    assert sorted((f.agency_code, f.cells) for f in hits) == [
        (a.code, (spec.FIELD["TXT_management"].ref,)),
        (b.code, (spec.FIELD["TXT_management"].ref,)),
    ]


# ---- text helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, years",
    [
        ("2024年，我局推进公开。", []),
        ("2023年，我局推进公开。", [2023]),
        ("根据《中华人民共和国政府信息公开条例》（2019年修订）要求", []),
        ("《2022年政务公开工作要点》", []),
    ],
)
def test_other_years(text, years):
    assert validate._other_years(text, 2024, "TXT_overview") == years


def test_next_year_allowed_in_improvements_only():
    assert validate._other_years("2025年将加强培训", 2024, "TXT_improvements") == []
    assert validate._other_years("2025年将加强培训", 2024, "TXT_overview") == [2025]


@pytest.mark.parametrize(
    "text, ok",
    [
        ("本年共收到政府信息公开申请19件", True),  # 新收
        ("本年共收到政府信息公开申请22件", True),  # 新收 + 上年结转
        ("本年共收到政府信息公开申请20件", False),
        ("本年未收到政府信息公开申请", False),
        ("发生涉政府 信息公开的行政复议案 1 件", True),
        ("行政复议2件", False),
        ("行政诉讼2件", True),
        ("上年结转3件", True), ("上年结转申请4件", False),
        ("结转下年度继续办理4件", True), ("结转下年度继续办理5件", False),
        ("本年度办结18件", True), ("已办结申请17件", False),
        ("制发规范性文件2件", True), ("印发行政规范性文件3件", False),
        ("作出行政许可决定120件", True), ("行政处罚35件", True), ("行政强制4件", True), ("行政强制5件", False),
        ("梳理行政许可事项152项", True),  # 项, not 件: a list of matters, not decisions
    ],
)
def test_number_claims(text, ok, tmp_path, valid):
    fields = {**D.field_values(D.AGENCIES[0], D.YEAR, D.figures()), "TXT_on_request": text}
    path = D.write_valid(tmp_path / "x.xlsx", D.AGENCIES[0], D.YEAR, D.figures(), fields)
    assert (D.VT[C("三", "new", "total")], D.VT[C("三", "carried_in", "total")], D.VT[C("三", "carried_over", "total")],
            D.VT[C("三", "total", "total")]) == (19, 3, 4, 18)
    _, report = run([path])
    hits = [f for f in report.findings if f.code == "TEXT_NUMBER_MISMATCH"]
    assert (not hits) == ok, [f.message for f in hits]


# ---- coercion -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, status, value",
    [
        ("５", "coerced", 5), ("5件", "coerced", 5), (" 7 ", "coerced", 7), ("1,234", "coerced", 1234),
        ("无", "coerced", 0), ("—", "coerced", 0), ("-", "coerced", 0), ("", "blank", 0), ("　", "blank", 0),
        ("不详", "text", None), ("约5", "text", None), ("5-6", "text", None), ("5元", "text", None),
        ("#REF!", "excel_error", None),
    ],
)
def test_parse_number(raw, status, value):
    got_status, got, _ = cells.parse_number(xlsx_reader.RawCell("str", raw), "count")
    assert (got_status, None if got is None else int(got)) == (status, value)


def test_money_keeps_decimals_exactly():
    status, value, _ = cells.parse_number(xlsx_reader.RawCell("num", "12.3456"), "money")
    assert status == "ok" and str(value) == "12.3456"
    status, value, _ = cells.parse_number(xlsx_reader.RawCell("num", "1.1000000000000001"), "money")
    assert str(value) == "1.1"
    assert cells.parse_number(xlsx_reader.RawCell("str", "3.5万元"), "money")[:2] == ("coerced", Decimal("3.5"))


# ---- registry -------------------------------------------------------------------------------------------


def test_every_code_used_is_registered():
    used = set()
    for mod in ("read", "validate"):
        src = (ROOT / "pipeline" / f"{mod}.py").read_text(encoding="utf-8")
        used |= set(re.findall(r'(?:make|finding|reject)\(\s*"([A-Z0-9_]+)"', src))
        used |= set(re.findall(r'_Reject\("([A-Z0-9_]+)"', src))
    used |= set(validate._STATUS_CODE.values())
    assert used - set(F.REGISTRY) == set()
    # every registered code is exercised by some defect or test in this module
    tested = {d.code for d in D.DEFECTS} | {"AGENCY_DUPLICATE", "AGENCY_MISSING", "R8", "R6", "YOY_JUMP",
                                           "PREVIOUS_MISSING",  # tests/test_balance_findings.py
                                           "FILE_UNREADABLE", "FILE_LINK",  # tests/test_january.py
                                           "TEXT_SAME_AS_LAST_YEAR", "TEXT_SAME_AS_OTHER"}
    assert set(F.REGISTRY) - tested == set()


def test_registry_markdown_lists_every_code():
    md = F.registry_markdown()
    for code in F.REGISTRY:
        assert f"`{code}`" in md
    assert md.count("\n") == len(F.REGISTRY) + 2


def test_messages_have_no_unfilled_placeholders(valid, tmp_path):
    for key in ("r1_broken", "r9_fee", "row_inserted", "number_mismatch", "old_format_2019"):
        path = D.make_defect(key, valid, tmp_path)
        _, report = run([path])
        for f in report.findings:
            assert "{" not in f.message and "}" not in f.message
            assert "“”" not in f.message.replace("实为“”", ""), f.message


# ---- real workbooks --------------------------------------------------------------------------------------

SAMPLE = ROOT / "examples" / "sample_county"
SEED = ROOT / "tests" / "fixtures" / "seed_jixian_2024.xlsx"
needs_template = pytest.mark.skipif(D._template() is None, reason="pipeline.template not yet available")


@needs_template
@pytest.mark.skipif(not SAMPLE.is_dir(), reason="no sample county")
def test_sample_county_validates_clean():
    ws = workspace.load(SAMPLE)
    years = ws.years()
    previous = None
    for y in years:
        batch = read.read_batch(ws.files(y), y, ws)
        report = validate.validate(batch, ws, previous)
        assert [(f.code, f.file, f.cells, f.message) for f in report.findings] == []
        assert all(v.status == "read" for v in batch.files)
        previous = batch


@needs_template
@pytest.mark.skipif(not SEED.is_file(), reason="no seed fixture")
def test_seed_validates_clean():
    batch, report = run([SEED])
    # the published report names no 填报人 and no 填报日期 (the seed carries only what it prints): both asked for
    required = [spec.FIELD[n] for n in ("INFO_preparer", "INFO_fill_date")]
    assert [(f.code, f.severity, f.cells) for f in report.findings] == [
        ("FIELD_REQUIRED", "warning", (r.ref,)) for r in required]
    data = batch.agency_data()[0]
    assert data.name == "集贤县集贤镇人民政府"
    assert all(v == 0 for v in data.values.values())


def test_batch_read_without_workspace_validates_against_it(ws, valid):
    batch = read.read_batch([valid], D.YEAR)
    report = validate.validate(batch, ws)
    assert {f.code for f in report.findings} == {"AGENCY_MISSING"}
