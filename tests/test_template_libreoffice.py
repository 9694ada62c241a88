"""The template survives LibreOffice: open headless, save as .xlsx, read back with openpyxl.

Skipped with a reason when `soffice` is missing, except under CI=true, where a missing LibreOffice fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline import spec, template
from pipeline.ooxml import save_workbook
from pipeline.workspace import Agency

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def soffice() -> str:
    if SOFFICE is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but LibreOffice (soffice) is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    return SOFFICE


def _convert(soffice: str, src: Path, tmp: Path) -> Path:
    out = tmp / "lo"
    profile = (tmp / "profile").resolve().as_uri()
    subprocess.run(
        [soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore", "--convert-to", "xlsx",
         "--outdir", str(out), str(src)],
        check=True, capture_output=True, timeout=180,
    )
    result = out / src.name
    assert result.is_file(), f"LibreOffice wrote nothing for {src.name}"
    return result


@pytest.fixture(scope="module")
def converted(soffice, tmp_path_factory) -> tuple[openpyxl.Workbook, openpyxl.Workbook]:
    """(formulas, computed values) of a pre-filled workbook whose R1 fails in the 自然人 column and whose table 四
    has a result typed as text (行政复议) and a decimal (未经复议直接起诉)."""
    tmp = tmp_path_factory.mktemp("lo")
    wb = template.build_workbook(2024, Agency("J01", "集贤镇人民政府", spec.CATEGORY_LABELS[2]))
    template.fill(wb, {spec.cell_name("三", "new", "natural"): 5, spec.cell_name("三", "granted", "natural"): 3,
                       spec.cell_name("三", "new", "business"): 2, spec.cell_name("三", "granted", "business"): 2,
                       "TXT_overview": "=1+1",
                       # table 四: a result typed as text (pasted past the validation) and a decimal, one valid
                       spec.cell_name("四", "reconsideration", "upheld"): "3",
                       spec.cell_name("四", "litigation_direct", "pending"): Decimal("1.5"),
                       spec.cell_name("四", "litigation_after", "corrected"): 2})
    src = save_workbook(wb, tmp / "in.xlsx")
    out = _convert(soffice, src, tmp)
    return openpyxl.load_workbook(out), openpyxl.load_workbook(out, data_only=True)


def test_labels_survive(converted):
    wb, _ = converted
    assert wb.sheetnames == list(spec.SHEETS)
    for lab in spec.LABELS:
        assert wb[lab.sheet][lab.ref].value == lab.text, (lab.sheet, lab.ref)
        if lab.merge_to:
            assert f"{lab.ref}:{lab.merge_to}" in {str(r) for r in wb[lab.sheet].merged_cells.ranges}


def test_defined_names_survive(converted):
    wb, _ = converted
    expected = spec.all_defined_names()
    assert set(wb.defined_names) == set(expected)
    for name, dn in wb.defined_names.items():
        (sheet, ref), = list(dn.destinations)
        assert (sheet, ref.replace("$", "")) == expected[name], name


def test_data_validation_survives(converted):
    wb, _ = converted
    seen: dict[tuple[str, str], str] = {}
    for ws in wb.worksheets:
        for dv in ws.data_validations.dataValidation:
            for rng in dv.sqref.ranges:
                for row in ws.iter_rows(min_row=rng.min_row, max_row=rng.max_row, min_col=rng.min_col,
                                        max_col=rng.max_col):
                    for c in row:
                        seen[(ws.title, c.coordinate)] = dv.type
    for c in spec.INPUT_CELLS:
        assert seen.get((c.sheet, c.ref)) == ("decimal" if c.kind == "money" else "whole"), c.name
    for f in spec.FIELDS:
        if f.choices:
            assert seen.get((f.sheet, f.ref)) == "list", f.name


def test_sheet_protection_and_locking_survive(converted):
    wb, _ = converted
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
        assert ws.protection.password, ws.title
    assert wb[spec.CELL["T3_new_total"].sheet][spec.CELL["T3_new_total"].ref].protection.locked
    assert not wb[spec.CELL["T3_new_natural"].sheet][spec.CELL["T3_new_natural"].ref].protection.locked
    for name in ("INFO_agency_code", "INFO_agency_name"):  # pre-filled from the roster: locked
        f = spec.FIELD[name]
        assert wb[f.sheet][f.ref].protection.locked, name
    f = spec.FIELD["INFO_preparer"]
    assert not wb[f.sheet][f.ref].protection.locked


def test_text_stays_text_and_checks_compute(converted):
    _, values = converted
    f = spec.FIELD["TXT_overview"]
    assert values[f.sheet][f.ref].value == "=1+1"
    t3 = spec.CHECKS[0]
    ws = values[t3.sheet]
    by_key = {key: ws[ref].value for key, ref in t3.rule_refs}
    assert by_key["R1.natural"] == spec.CHECK_FAIL  # 5 new, 3 granted, nothing carried over
    assert by_key["R1.business"] == spec.CHECK_OK
    assert ws[t3.summary_ref].value == spec.CHECK_SUMMARY_FAIL
    assert ws[spec.CELL["T3_new_total"].ref].value == 7



def test_table4_check_reads_what_the_agency_typed(converted):
    """总计 is SUM(results): text is left out of it, so the old check 总计 = SUM(results) said ✓ whatever was typed.
    The check now says ✗ for the group with text or a decimal, ✓ for the valid one."""
    _, values = converted
    t4 = spec.CHECKS[1]
    ws = values[t4.sheet]
    by_key = {key: ws[ref].value for key, ref in t4.rule_refs}
    assert by_key == {"R5.reconsideration": spec.CHECK_FAIL, "R5.litigation_direct": spec.CHECK_FAIL,
                      "R5.litigation_after": spec.CHECK_OK}
    assert ws[t4.summary_ref].value == spec.CHECK_SUMMARY_FAIL
    assert ws[spec.CELL[spec.cell_name("四", "reconsideration", "total")].ref].value == 0  # the text left out
    assert ws[spec.CELL[spec.cell_name("四", "litigation_after", "total")].ref].value == 2
