"""Reading reports the way real ones are written (issue 12): the 2019 format only on real evidence, label
near-misses as 提示, blanks one finding per table, required cover fields."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import read, spec, validate

C = spec.cell_name


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    return D.write_valid(tmp_path_factory.mktemp("valid") / "a.xlsx")


def _label(text: str) -> spec.LabelSpec:
    return next(lab for lab in spec.LABELS if lab.text == text)


def _edited(valid: Path, tmp_path: Path, *edits) -> Path:
    def fn(wb):
        for sheet, ref, value in edits:
            wb[sheet][ref] = value

    return D._edit(valid, tmp_path / "b.xlsx", fn)


def _run(path: Path):
    batch = read.read_batch([path], D.YEAR)
    return batch, validate.validate(batch)


def _codes(report) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(f.code, f.severity, f.sheet, f.cells) for f in report.findings]


# ---- 1. the 2019 format on real evidence -----------------------------------------------------------------

NORMATIVE = spec.row_node("二", "normative_documents").label


def test_one_2019_label_variant_is_not_the_old_format(valid, tmp_path):
    lab = _label(NORMATIVE)
    path = _edited(valid, tmp_path, (lab.sheet, lab.ref, spec.OLD_FORMAT_VARIANTS[0]))
    batch, report = _run(path)
    assert batch.files[0].status == "read" and len(batch.records) == 1
    assert "OLD_FORMAT" not in {f.code for f in report.findings}
    # a label near-miss, and nothing else: the other checks ran and found the workbook clean
    assert _codes(report) == [("LABEL_VARIANT", "warning", lab.sheet, (lab.ref,))]
    (f,) = report.findings
    assert "缺少“行政”" in f.message and f.expected == NORMATIVE and f.actual == "规范性文件"
    assert report.ok


def test_other_checks_run_beside_a_label_variant(valid, tmp_path):
    lab = _label(NORMATIVE)
    sheet, ref = spec.all_defined_names()[C("三", "carried_over", "natural")]
    path = _edited(valid, tmp_path, (lab.sheet, lab.ref, "规范性文件"), (sheet, ref, 99))
    _, report = _run(path)
    codes = {f.code for f in report.findings}
    assert "LABEL_VARIANT" in codes and "R1" in codes and "OLD_FORMAT" not in codes


def test_a_workbook_laid_out_with_2019_headers_is_the_old_format(valid, tmp_path):
    sheet = spec.T2_SHEET
    lab = _label(NORMATIVE)
    path = _edited(valid, tmp_path, (sheet, "B3", "本年新制作数量"), (sheet, "C3", "本年新公开数量"),
                   (sheet, "D3", "对外公开总数量"), (lab.sheet, lab.ref, "规范性文件"))
    batch, report = _run(path)
    assert batch.files[0].status == "rejected" and batch.records == []
    (f,) = [f for f in report.findings if f.code == "OLD_FORMAT"]
    assert f.severity == "error" and f.sheet == sheet
    assert set(f.cells) == {"B3", "C3", "D3", lab.ref}
    assert "本年新制作数量" in f.message and "规范性文件" in f.message


def test_two_near_miss_labels_of_2019_are_not_enough():
    assert not spec.is_old_format(["规范性文件", "处理决定数量"])
    assert not spec.is_old_format(["规范性文件", "本年新制作数量"])
    assert not spec.is_old_format(["本年新制作数量"])
    assert spec.is_old_format(["本年新制作数量", "本年新公开数量", "规范性文件"])
    assert spec.is_old_format(["上一年项目数量", "本年增/减", "处理决定数量"])


# ---- 2. label near-misses --------------------------------------------------------------------------------

RECONSIDERATION = spec.row_node("四", "reconsideration").label


@pytest.mark.parametrize("typed, difference", [
    ("行政法复议", "多出“法”"),  # Pingtan 2022
    ("行行政复议", "多出“行”"),  # 宣州区审计局 2022
    ("行政 法复议", "多出“法”"),  # a space never counts
    ("行政\n复 议法", "多出“法”"),
])
def test_a_label_typo_is_a_warning_with_the_difference(valid, tmp_path, typed, difference):
    lab = _label(RECONSIDERATION)
    _, report = _run(_edited(valid, tmp_path, (lab.sheet, lab.ref, typed)))
    assert _codes(report) == [("LABEL_VARIANT", "warning", lab.sheet, (lab.ref,))]
    f = report.findings[0]
    assert difference in f.message and f.expected == RECONSIDERATION and f.actual == typed
    assert report.ok  # not blocking


def test_full_width_and_spaces_alone_are_the_label(valid, tmp_path):
    lab = next(lab for lab in spec.LABELS if lab.text.startswith("（一）"))
    typed = "(一) " + lab.text.removeprefix("（一）")  # half-width brackets and a space: the same label
    _, report = _run(_edited(valid, tmp_path, (lab.sheet, lab.ref, typed)))
    assert report.findings == []


def test_a_label_changed_beyond_a_typo_still_blocks(valid, tmp_path):
    lab = _label(RECONSIDERATION)
    _, report = _run(_edited(valid, tmp_path, (lab.sheet, lab.ref, "信访事项")))
    assert _codes(report) == [("LABEL_CHANGED", "error", lab.sheet, (lab.ref,))]


def test_a_label_as_close_to_another_label_blocks(valid, tmp_path):
    # 结果维持 typed where 结果纠正 belongs: a label of the format, not a typo of this one
    lab = next(lab for lab in spec.LABELS if lab.text == spec.column_node("四", "corrected").label)
    _, report = _run(_edited(valid, tmp_path, (lab.sheet, lab.ref, spec.column_node("四", "upheld").label)))
    assert ("LABEL_CHANGED", "error", lab.sheet, (lab.ref,)) in _codes(report)


def test_a_label_typo_blocks_when_the_names_are_gone(valid, tmp_path):
    lab = _label(RECONSIDERATION)

    def fn(wb):
        for name in [n for n, (sheet, _) in spec.all_defined_names().items() if sheet == lab.sheet]:
            if name in wb.defined_names:
                del wb.defined_names[name]
        wb[lab.sheet][lab.ref] = "行政法复议"

    path = D._edit(valid, tmp_path / "c.xlsx", fn)
    _, report = _run(path)
    assert ("LABEL_CHANGED", "error", lab.sheet, (lab.ref,)) in _codes(report)
    assert "LABEL_VARIANT" not in {f.code for f in report.findings}


def test_near_miss_rules():
    assert read.label_near_miss("规范性文件", NORMATIVE) == "缺少“行政”"
    assert read.label_near_miss("3.危及安全稳定", "3.危及“三安全一稳定”") is None  # four characters dropped
    assert read.label_near_miss("结果更正", "结果纠正") == "“纠”写成“更”"
    assert read.label_near_miss("结果维持", "结果纠正") is None  # another label of the format


# ---- 3. blanks: one finding per table --------------------------------------------------------------------


def _blanked(valid: Path, tmp_path: Path, names: list[str]) -> Path:
    pos = spec.all_defined_names()
    return _edited(valid, tmp_path, *((pos[n][0], pos[n][1], None) for n in names))


def test_all_of_table_three_blank_is_one_finding_naming_every_cell(valid, tmp_path):
    inputs = [c.name for c in spec.INPUT_CELLS if c.table == "三"]
    batch, report = _run(_blanked(valid, tmp_path, inputs))
    blanks = [f for f in report.findings if f.code == "CELL_BLANK"]
    assert len(blanks) == 1
    (f,) = blanks
    assert f.severity == "warning" and f.sheet == spec.T3_SHEET
    assert set(f.cells) == {spec.CELL[n].ref for n in inputs} and len(f.cells) == len(inputs)
    assert f"表三有 {len(inputs)} 个单元格为空" in f.message and "按 0 计" in f.message
    # taken as 0: the workbook's figures are all 0 and every rule holds
    (data,) = batch.agency_data()
    assert all(data.values[n] == 0 for n in inputs)
    assert not {"R1", "R2", "R3"} & {f.code for f in report.findings}


def test_blanks_in_two_tables_are_two_findings(valid, tmp_path):
    t2 = [C("二", "licensing", "decisions"), C("二", "penalties", "decisions")]
    t3 = [C("三", "other_other", "natural")]
    _, report = _run(_blanked(valid, tmp_path, t2 + t3))
    blanks = sorted((f.sheet, f.cells) for f in report.findings if f.code == "CELL_BLANK")
    assert blanks == sorted([(spec.T2_SHEET, tuple(spec.CELL[n].ref for n in t2)),
                             (spec.T3_SHEET, tuple(spec.CELL[n].ref for n in t3))])
    one = next(f for f in report.findings if f.code == "CELL_BLANK" and f.sheet == spec.T3_SHEET)
    assert spec.CELL[t3[0]].ref in one.message  # a few blanks: each named with its row and column
    assert spec.CELL[t3[0]].column in one.message


def test_many_blanks_are_summarised_as_ranges():
    from pipeline.validate import _ranges

    refs = [f"{c}{r}" for r in range(5, 30) for c in "DEFGHIJ"]
    assert _ranges(refs) == ["D5:J29"]
    assert _ranges(["D5", "E5", "D6", "E6", "G6"]) == ["D5:E6", "G6"]


# ---- 4. required cover fields ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from pipeline import workspace

    return workspace.load(D.write_workspace(tmp_path_factory.mktemp("ws") / "county"))


def _with_fields(valid: Path, tmp_path: Path, ws, **fields) -> list:
    pos = spec.all_defined_names()
    path = _edited(valid, tmp_path, *((pos[n][0], pos[n][1], v) for n, v in fields.items()))
    batch = read.read_batch([path], D.YEAR, ws, base=path.parent)
    return [f for f in validate.validate(batch, ws).findings if f.code != "AGENCY_MISSING"]  # the other agency


def test_required_cover_fields_are_in_the_spec():
    required = {f.name for f in spec.FIELDS if f.sheet == spec.SHEET_INFO and f.required}
    assert {"INFO_agency_name", "INFO_agency_code", "INFO_contact_office", "INFO_phone", "INFO_preparer",
            "INFO_fill_date"} <= required
    assert {"INFO_address", "INFO_postcode", "INFO_publish_url", "INFO_reviewer"}.isdisjoint(required)
    assert {f.name for f in spec.FIELDS if f.identifies} == {"INFO_agency_name", "INFO_agency_code"}
    assert {f["name"] for f in spec.as_json()["fields"] if f.get("identifies")} == {"INFO_agency_name",
                                                                                     "INFO_agency_code"}


def test_empty_required_cover_fields_are_warnings(valid, tmp_path, ws):
    names = ["INFO_contact_office", "INFO_phone", "INFO_preparer", "INFO_fill_date"]
    found = _with_fields(valid, tmp_path, ws, **{n: None for n in names}, INFO_address=None)
    assert sorted((f.code, f.severity, f.sheet, f.cells) for f in found) == sorted(
        ("FIELD_REQUIRED", "warning", spec.SHEET_INFO, (spec.FIELD[n].ref,)) for n in names)
    by_cell = {f.cells[0]: f for f in found}
    assert all(spec.FIELD[n].label in by_cell[spec.FIELD[n].ref].message for n in names)


def test_empty_agency_code_is_an_error_once(valid, tmp_path, ws):
    found = _with_fields(valid, tmp_path, ws, INFO_agency_code=None)
    assert [(f.code, f.severity, f.cells) for f in found] == [
        ("AGENCY_ID_EMPTY", "error", (spec.FIELD["INFO_agency_code"].ref,))]


def test_empty_agency_name_is_an_error_not_a_name_mismatch(valid, tmp_path, ws):
    found = _with_fields(valid, tmp_path, ws, INFO_agency_name=None)
    assert [(f.code, f.severity, f.cells) for f in found] == [
        ("AGENCY_ID_EMPTY", "error", (spec.FIELD["INFO_agency_name"].ref,))]


def test_both_identity_fields_empty_are_two_errors_not_an_unknown_agency(valid, tmp_path, ws):
    found = _with_fields(valid, tmp_path, ws, INFO_agency_name=None, INFO_agency_code=None)
    codes = sorted((f.code, f.cells) for f in found)
    assert codes == sorted([("AGENCY_ID_EMPTY", (spec.FIELD["INFO_agency_name"].ref,)),
                            ("AGENCY_ID_EMPTY", (spec.FIELD["INFO_agency_code"].ref,))])
    assert "AGENCY_UNKNOWN" not in {f.code for f in found}


def test_an_empty_report_year_is_reported_once(valid, tmp_path, ws):
    found = _with_fields(valid, tmp_path, ws, INFO_report_year=None)
    assert [f.code for f in found] == ["REPORT_YEAR"]
