"""The standard workbook (pipeline/template.py) against the spec: labels, cells, names, protection, validation."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.cell import range_boundaries

from pipeline import spec, template
from pipeline.ooxml import save_workbook
from pipeline.workspace import Agency, County, Workspace

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "input_templates" / template.BLANK_FILE_NAME
YEAR = 2024

AGENCY = Agency(code="J01", name="示例县集贤镇人民政府", category=spec.CATEGORY_LABELS[2],
                contact_office="党政办公室", postcode="155000", phone="0469-4914003")
PREVIOUS = {
    **{spec.cell_name("三", "carried_over", c.column_key): v
       for c, v in zip([c for c in spec.INPUT_CELLS if c.row_key == "carried_over"], range(1, 100))},
    spec.cell_name("三", "carried_over", "total"): 21,
    "T2_regulations_in_force": 0,
    "T2_normative_documents_in_force": Decimal(7),
}


def _save_load(wb, tmp_path: Path, name: str = "wb.xlsx", **kw) -> openpyxl.Workbook:
    path = save_workbook(wb, tmp_path / name)
    return openpyxl.load_workbook(path, **kw)


@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> openpyxl.Workbook:
    path = template.write_blank(tmp_path_factory.mktemp("blank"), YEAR)
    return openpyxl.load_workbook(path)


@pytest.fixture(scope="module")
def prefilled(tmp_path_factory) -> openpyxl.Workbook:
    wb = template.build_workbook(YEAR, AGENCY, PREVIOUS)
    return _save_load(wb, tmp_path_factory.mktemp("pre"))


def _input_positions(prefilled: bool = False, carried_in_locked: bool = False) -> set[tuple[str, str]]:
    out = {(c.sheet, c.ref) for c in spec.INPUT_CELLS
           if not (carried_in_locked and c.table == "三" and c.row_key == "carried_in")}
    out |= {(f.sheet, f.ref) for f in spec.FIELDS if not (f.prefilled and (prefilled or f.name in
                                                                          ("INFO_report_year", "META_format_version")))}
    return out


# ---- structure ------------------------------------------------------------------------------------------


def test_sheets_in_spec_order(blank):
    assert blank.sheetnames == list(spec.SHEETS)


def test_every_label_at_its_cell_with_its_merge(blank):
    for lab in spec.LABELS:
        ws = blank[lab.sheet]
        assert ws[lab.ref].value == lab.text, (lab.sheet, lab.ref)
        merged = {str(r) for r in ws.merged_cells.ranges}
        if lab.merge_to:
            assert f"{lab.ref}:{lab.merge_to}" in merged, (lab.sheet, lab.ref)
        else:
            assert not any(lab.ref in r for r in ws.merged_cells.ranges), (lab.sheet, lab.ref)


def test_wide_value_cells_merged(blank):
    wide = [c for c in spec.CELLS if c.merge_to]
    assert wide, "table 二 has wide value cells"
    for c in wide:
        assert f"{c.ref}:{c.merge_to}" in {str(r) for r in blank[c.sheet].merged_cells.ranges}


def test_fields_label_input_hint(blank):
    for f in spec.FIELDS:
        ws = blank[f.sheet]
        row = int(re.sub(r"\D", "", f.ref))
        assert f.ref.startswith("B")
        assert ws[f"A{row}"].value == f.label
        assert (ws[f"C{row}"].value or "") == f.hint
    for sheet in {f.sheet for f in spec.FIELDS}:
        assert [blank[sheet].cell(row=2, column=j).value for j in (1, 2, 3)] == list(spec.FIELD_TABLE_HEADER)


def test_text_cells_are_text_formatted(blank):
    for f in spec.FIELDS:
        if f.kind == "text":
            assert blank[f.sheet][f.ref].number_format == "@", f.name
    assert blank[spec.FIELD["INFO_postcode"].sheet][spec.FIELD["INFO_postcode"].ref].number_format == "@"
    assert blank[spec.FIELD["INFO_phone"].sheet][spec.FIELD["INFO_phone"].ref].number_format == "@"


# ---- defined names ----------------------------------------------------------------------------------------


def test_every_name_defined_once_and_points_at_its_cell():
    with zipfile.ZipFile(COMMITTED) as zf:
        xml = zf.read("xl/workbook.xml").decode("utf-8")
    found = re.findall(r'<definedName name="([^"]+)"[^>]*>([^<]+)</definedName>', xml)
    names = [n for n, _ in found]
    assert len(names) == len(set(names)), "duplicate defined names"
    expected = spec.all_defined_names()
    assert set(names) == set(expected)
    targets = [t.replace("&apos;", "'") for _, t in found]
    assert len(targets) == len(set(targets)), "two names point at one cell"
    for name, target in zip(names, targets):
        assert target == spec.defined_name_formula(*expected[name]), name


def test_every_input_cell_has_exactly_one_name(blank):
    by_target: dict[tuple[str, str], list[str]] = {}
    for name, dn in blank.defined_names.items():
        (sheet, ref), = list(dn.destinations)
        by_target.setdefault((sheet, ref.replace("$", "")), []).append(name)
    for sheet, ref in _input_positions():
        assert len(by_target.get((sheet, ref), [])) == 1, (sheet, ref)


# ---- values and formulas ----------------------------------------------------------------------------------


def test_number_inputs_start_at_zero_and_computed_cells_hold_spec_formula(blank):
    for c in spec.CELLS:
        v = blank[c.sheet][c.ref].value
        if c.computed:
            assert v == c.formula(), c.name
        else:
            assert v == 0, c.name


def test_computed_formula_sums_exactly_the_addends():
    # independent of spec.formula(): expand the ranges and compare with the addends' refs
    for c in spec.CELLS:
        if not c.computed:
            continue
        inner = re.fullmatch(r"=SUM\((.+)\)", c.formula()).group(1)
        assert _expand(inner) == {spec.CELL[a].ref for a in c.addends}, c.name


def _expand(refs: str) -> set[str]:
    out: set[str] = set()
    for part in refs.split(","):
        min_col, min_row, max_col, max_row = range_boundaries(part)
        for r in range(min_row, max_row + 1):
            for col in range(min_col, max_col + 1):
                out.add(f"{openpyxl.utils.get_column_letter(col)}{r}")
    return out


def test_meta_and_year(blank):
    assert blank[spec.FIELD["META_format_version"].sheet][spec.FIELD["META_format_version"].ref].value == \
        spec.FORMAT_VERSION
    assert blank[spec.FIELD["INFO_report_year"].sheet][spec.FIELD["INFO_report_year"].ref].value == YEAR
    props = {p.name: p.value for p in blank.custom_doc_props.props}
    assert props[spec.DOC_PROPERTY_FORMAT_VERSION] == spec.FORMAT_VERSION
    assert props[spec.DOC_PROPERTY_REPORT_YEAR] == YEAR
    assert props[spec.DOC_PROPERTY_FORMAT_DOCUMENT] == spec.FORMAT_DOCUMENT


def test_check_cells_reference_the_rule_cells(blank):
    """Each check cell reads the rule's cells — but never a total together with the parts its own formula sums
    (R5: 总计 = SUM(results) is always ✓): there it reads the parts, the cells the agency types."""
    for chk in spec.CHECKS:
        ws = blank[chk.sheet]
        assert ws[chk.label_ref].value == spec.CHECK_LABEL
        for key, ref in chk.rule_refs:
            rule = spec.RULE[key]
            f = ws[ref].value
            assert isinstance(f, str) and f'"{spec.CHECK_OK}"' in f and f'"{spec.CHECK_FAIL}"' in f
            refs = _refs_in(f)
            by_ref = {spec.CELL[n].ref: spec.CELL[n] for n in rule.cells}
            for c in by_ref.values():
                if c.computed:
                    assert not (c.ref in refs and {spec.CELL[a].ref for a in c.addends} <= refs), (key, c.name)
            typed = {r for r, c in by_ref.items() if not c.computed}
            assert typed <= refs <= set(by_ref), key
        summary = ws[chk.summary_ref].value
        assert f'"{spec.CHECK_SUMMARY_OK}"' in summary and f'"{spec.CHECK_SUMMARY_FAIL}"' in summary
        assert _refs_in(summary) == {ref for _, ref in chk.rule_refs}  # all the check cells ✓


def test_table4_check_row_spans_every_column_one_cell_per_group(blank):
    chk = spec.CHECKS[1]
    ws = blank[chk.sheet]
    merged = {str(r) for r in ws.merged_cells.ranges}
    groups = {c.row_key: [] for c in spec.table_cells("四")}
    for c in spec.table_cells("四"):
        groups[c.row_key].append(_col(c.ref))
    assert [k for k, _ in chk.rule_refs] == [f"R5.{g}" for g in groups]
    row = int(re.sub(r"\D", "", chk.rule_refs[0][1]))
    for (key, ref), cols in zip(chk.rule_refs, groups.values()):
        span = f"{ref}:{openpyxl.utils.get_column_letter(max(cols))}{row}"
        assert _col(ref) == min(cols) and span in merged, key  # under all of its group's columns
        parts = {spec.CELL[n].ref for n in spec.RULE[key].cells if not spec.CELL[n].computed}
        assert _refs_in(ws[ref].value) == parts, key
    covered = set()
    for rng in ws.merged_cells.ranges:
        if rng.min_row <= row <= rng.max_row or rng.min_row == _row(chk.label_ref):
            covered |= {(r, c) for r in range(rng.min_row, rng.max_row + 1)
                        for c in range(rng.min_col, rng.max_col + 1)}
    last = max(_col(c.ref) for c in spec.table_cells("四"))
    for r in (_row(chk.label_ref), row):  # the label + summary row and the check row: every column
        assert {c for rr, c in covered if rr == r} == set(range(1, last + 1)), r


def _col(ref: str) -> int:
    return openpyxl.utils.cell.column_index_from_string(re.sub(r"\d", "", ref))


def _row(ref: str) -> int:
    return int(re.sub(r"\D", "", ref))


def _refs_in(formula: str) -> set[str]:
    body = re.sub(r'"[^"]*"', "", formula)
    out: set[str] = set()
    for m in re.finditer(r"\b([A-Z]{1,3}\d+(?::[A-Z]{1,3}\d+)?)\b", body):
        out |= _expand(m.group(1))
    return out


def test_check_cells_turn_red_when_failing(blank):
    for chk in spec.CHECKS:
        ws = blank[chk.sheet]
        rules = [r for cf in ws.conditional_formatting for r in cf.rules
                 if any(ref in cf.sqref for _, ref in chk.rule_refs)]
        covered = {
            ref for _, ref in chk.rule_refs
            if any(ref in cf.sqref and any(f'"{spec.CHECK_FAIL}"' in x for r in cf.rules for x in r.formula)
                   for cf in ws.conditional_formatting)}
        assert covered == {ref for _, ref in chk.rule_refs}
        # ✗ red, ✓ green: the legend's colours on 填报说明
        for r in rules:
            want = template.CHECK_FAIL_FILL if f'"{spec.CHECK_FAIL}"' in r.formula[0] else template.CHECK_OK_FILL
            assert r.dxf.fill.fgColor.rgb[-6:] == want.fgColor.rgb[-6:], r.formula
        assert any(chk.summary_ref in cf.sqref for cf in ws.conditional_formatting)


# ---- protection -------------------------------------------------------------------------------------------


def _unlocked(wb) -> set[tuple[str, str]]:
    out = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if not isinstance(c, openpyxl.cell.cell.MergedCell) and c.protection.locked is False:
                    out.add((ws.title, c.coordinate))
    return out


def test_only_input_cells_unlocked(blank):
    assert _unlocked(blank) == _input_positions()


def test_every_sheet_protected_and_structure_locked(blank):
    for ws in blank.worksheets:
        assert ws.protection.sheet is True, ws.title
        assert ws.protection.password, ws.title
        assert ws.protection.insertRows and ws.protection.deleteRows, ws.title
    assert blank.security is not None and blank.security.lockStructure
    assert blank.security.workbookPassword


def test_password_hash_matches_module_constant(blank):
    from openpyxl.utils.protection import hash_password

    for ws in blank.worksheets:
        assert ws.protection.password == hash_password(template.SHEET_PASSWORD)
    assert blank.security.workbookPassword == hash_password(template.SHEET_PASSWORD)


# ---- data validation --------------------------------------------------------------------------------------


def _validations(wb) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for ws in wb.worksheets:
        for dv in ws.data_validations.dataValidation:
            for rng in dv.sqref.ranges:
                for ref in _expand(str(rng)):
                    out.setdefault((ws.title, ref), []).append(dv)
    return out


def test_every_number_input_has_the_right_validation(blank):
    dvs = _validations(blank)
    numbers = [(c.sheet, c.ref, c.kind) for c in spec.INPUT_CELLS]
    numbers += [(f.sheet, f.ref, f.kind) for f in spec.FIELDS if f.kind in ("count", "money")]
    assert len(numbers) == len(spec.INPUT_CELLS) + 3
    for sheet, ref, kind in numbers:
        (dv,) = dvs[(sheet, ref)]
        assert dv.type == ("decimal" if kind == "money" else "whole"), (sheet, ref)
        assert dv.operator == "greaterThanOrEqual" and dv.formula1 == "0"
        assert dv.showErrorMessage and dv.errorTitle and dv.error and dv.prompt
        assert re.search(r"[\u4e00-\u9fff]", dv.error) and re.search(r"[\u4e00-\u9fff]", dv.prompt)
    assert dvs[(spec.CELL["T2_fees_amount"].sheet, spec.CELL["T2_fees_amount"].ref)][0].type == "decimal"


def test_choice_fields_have_list_validation(blank):
    dvs = _validations(blank)
    for f in spec.FIELDS:
        if f.kind == "choice":
            (dv,) = dvs[(f.sheet, f.ref)]
            assert dv.type == "list"
            assert dv.formula1.strip('"').split(",") == list(f.choices)
    assert spec.FIELD["INFO_category"].choices == spec.CATEGORY_LABELS


def test_no_validation_on_computed_cells(blank):
    dvs = _validations(blank)
    for c in spec.CELLS:
        if c.computed:
            assert (c.sheet, c.ref) not in dvs, c.name


# ---- reproducibility --------------------------------------------------------------------------------------


def test_regenerating_gives_the_committed_bytes(tmp_path):
    # in a fresh interpreter, so hash randomisation cannot hide an unordered set
    code = ("import sys; from pathlib import Path; from pipeline import template; "
            "template.write_blank(Path(sys.argv[1]), 2024)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=ROOT,
                   env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert (tmp_path / template.BLANK_FILE_NAME).read_bytes() == COMMITTED.read_bytes(), \
        "input_templates is stale: run `nianbao template --year 2024` and commit"


def test_same_bytes_twice_in_process(tmp_path):
    a = template.write_blank(tmp_path / "a", YEAR).read_bytes()
    b = template.write_blank(tmp_path / "b", YEAR).read_bytes()
    assert a == b


# ---- guide ------------------------------------------------------------------------------------------------


def test_guide_says_deadline_format_year_and_rules(blank):
    text = "\n".join(str(c.value) for c in blank[spec.SHEET_GUIDE]["A"] if c.value)
    assert spec.AGENCY_DEADLINE in text and spec.FORMAT_DOCUMENT in text and f"{YEAR}年" in text
    assert f"{YEAR + 1}年{spec.AGENCY_DEADLINE}" in text
    assert ".xlsx" in text and "0" in text


def test_guide_lists_each_rule_family_once_in_the_spec_numbering(blank):
    """One line per rule number, R1–R11 in order, each with the spec's summary and the severity of its
    findings; no line per column or row (the old ~45 R1/R2 lines); a number the numbering leaves out (R7) is
    said to be unused rather than silently skipped."""
    lines = [str(c.value) for c in blank[spec.SHEET_GUIDE]["A"] if c.value]
    rule_lines = [ln for ln in lines if re.match(r"R\d+", ln)]
    numbers = [int(re.match(r"R(\d+)", ln).group(1)) for ln in rule_lines]
    assert numbers == sorted(int(k[1:]) for k in spec.RULE_SUMMARIES)
    assert numbers[0] == 1 and numbers[-1] == 11 and len(numbers) == len(set(numbers))
    for n, ln in zip(numbers, rule_lines):
        assert ln.endswith(spec.RULE_SUMMARIES[f"R{n}"]), n
        assert re.match(rf"R{n}【(错误|提示)】", ln), ln
    assert "R6【提示】" in rule_lines[numbers.index(6)]
    assert "R1【错误】" in rule_lines[0]
    missing = [f"R{n}" for n in range(1, 12) if n not in numbers]
    assert missing == ["R7"]
    assert any("R7" in ln and "空缺" in ln for ln in lines if not re.match(r"R\d+", ln))
    assert not any(r.title in ln for r in spec.RULES for ln in lines)  # no per-column / per-row rule titles
    assert len(lines) < 45


def test_guide_has_one_colour_legend_in_the_sheets_fills(blank):
    ws = blank[spec.SHEET_GUIDE]
    legend = {c.value: c.fill.fgColor.rgb for c in ws["A"] if c.value and c.fill.fill_type == "solid"}
    want = {text: fill.fgColor.rgb for fill, text in template._legend()}
    assert legend == want
    assert len(set(want.values())) == len(want)  # one colour, one meaning
    for fill, what in ((template.INPUT_FILL, "数字"), (template.TEXT_INPUT_FILL, "文字"),
                       (template.LOCKED_FILL, "锁定")):
        assert what in next(t for f, t in template._legend() if f is fill)


def _fill(cell) -> str | None:
    return cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None


@pytest.mark.parametrize("which", ["blank", "prefilled"])
def test_every_cell_coloured_by_what_it_is(which, request):
    """Number inputs yellow in the number style, text inputs (text, choice, date) lavender in the text style,
    locked cells never in an input colour; 单位类别 and 填报日期 are text inputs, not yellow like numbers."""
    wb = request.getfixturevalue(which)
    number_inputs = {(c.sheet, c.ref) for c in spec.INPUT_CELLS}
    number_inputs |= {(f.sheet, f.ref) for f in spec.FIELDS if f.kind in template.NUMBER_KINDS}
    yellow, lavender = template.INPUT_FILL.fgColor.rgb, template.TEXT_INPUT_FILL.fgColor.rgb
    for ws in wb.worksheets:
        if ws.title == spec.SHEET_GUIDE:
            continue  # the legend
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c, openpyxl.cell.cell.MergedCell):
                    continue
                pos, fill = (ws.title, c.coordinate), _fill(c)
                if c.protection.locked is False:
                    if pos in number_inputs:
                        assert fill == yellow and c.style == template.NUMBER_STYLE, pos
                    else:
                        assert fill == lavender and c.style == template.TEXT_STYLE, pos
                else:
                    assert fill not in (yellow, lavender), pos
    for name in ("INFO_category", "INFO_fill_date", "FEE_fee_charged", "TXT_overview"):
        f = spec.FIELD[name]
        cell = wb[f.sheet][f.ref]
        assert _fill(cell) == (lavender if not cell.protection.locked else template.LOCKED_FILL.fgColor.rgb), name
    f = spec.FIELD["FEE_fee_notices"]
    assert _fill(wb[f.sheet][f.ref]) == yellow
    assert {s.name if hasattr(s, "name") else s for s in wb.named_styles} >= \
        {template.NUMBER_STYLE, template.TEXT_STYLE, template.LOCKED_STYLE}


def test_guidance_readable_and_present_for_every_overview_item(blank):
    overview = spec.fields(section="一")
    assert len(overview) == 6 and all(f.hint for f in overview)
    for f in spec.FIELDS:
        if not f.hint:
            continue
        row = int(re.sub(r"\D", "", f.ref))
        hint = blank[f.sheet][f"C{row}"]
        assert hint.value == f.hint
        assert hint.font.sz >= 10.5 and hint.font.color.rgb in ("FF000000", None), f.name  # not grey 9 pt
        assert hint.alignment.wrap_text
        lines = template._lines(f.hint, blank[f.sheet].column_dimensions["C"].width)
        assert blank[f.sheet].row_dimensions[row].height >= lines * template.LINE_HEIGHT, f.name


# ---- pre-filled -------------------------------------------------------------------------------------------


def _v(wb, name):
    sheet, ref = spec.all_defined_names()[name]
    return wb[sheet][ref]


def test_prefilled_has_roster_identity_locked_with_note(prefilled):
    assert _v(prefilled, "INFO_agency_name").value == AGENCY.name
    assert _v(prefilled, "INFO_agency_code").value == AGENCY.code
    assert _v(prefilled, "INFO_category").value == AGENCY.category
    assert _v(prefilled, "INFO_postcode").value == "155000"  # text, leading zeros safe
    for f in spec.FIELDS:
        cell = _v(prefilled, f.name)
        if f.prefilled:
            assert cell.protection.locked, f.name
        if f.prefilled and f.name not in ("INFO_report_year", "META_format_version"):
            assert "县政务公开办" in cell.comment.text, f.name
    assert not _v(prefilled, "INFO_contact_office").protection.locked  # roster default, still editable


def test_prefilled_carry_over_from_last_year(prefilled):
    for c in spec.INPUT_CELLS:
        if c.table == "三" and c.row_key == "carried_in":
            src = spec.cell_name("三", "carried_over", c.column_key)
            cell = prefilled[c.sheet][c.ref]
            assert cell.value == PREVIOUS[src], c.name
            assert cell.protection.locked and "县政务公开办" in cell.comment.text
    assert _unlocked(prefilled) == _input_positions(prefilled=True, carried_in_locked=True)


def test_prefilled_reference_in_force(prefilled):
    for src, ref_name in spec.T2_REFERENCE_NAMES.items():
        cell = _v(prefilled, ref_name)
        assert cell.value == PREVIOUS[src] and cell.protection.locked
        assert cell.column == spec.T2_REFERENCE_COL
    header_row = min(_v(prefilled, n).row for n in spec.T2_REFERENCE_NAMES.values()) - 1
    assert prefilled[spec.T2_SHEET].cell(row=header_row, column=spec.T2_REFERENCE_COL).value == \
        spec.T2_REFERENCE_HEADER


def test_prefilled_without_previous_leaves_carry_in_open(tmp_path):
    wb = _save_load(template.build_workbook(YEAR, AGENCY), tmp_path)
    assert _unlocked(wb) == _input_positions(prefilled=True)
    for ref_name in spec.T2_REFERENCE_NAMES.values():
        assert _v(wb, ref_name).value is None
    props = {p.name: p.value for p in wb.custom_doc_props.props}
    assert props[spec.DOC_PROPERTY_AGENCY_CODE] == AGENCY.code


def test_write_prefilled_one_per_agency_with_safe_names(tmp_path):
    nasty = [
        Agency("../01", "示例县/财政局", spec.CATEGORY_LABELS[1]),
        Agency("02", 'a<b>c:d"e|f?g*h\\i', spec.CATEGORY_LABELS[1]),
        Agency("CON", "..", spec.CATEGORY_LABELS[0]),
        Agency("04", "名称\x07带控制字符 ", spec.CATEGORY_LABELS[2]),
        Agency("05", "很长" * 200, spec.CATEGORY_LABELS[2]),
    ]
    ws = Workspace(tmp_path / "ws", County("示例县"), tuple(nasty))
    out = tmp_path / "out"
    paths = template.write_prefilled(ws, YEAR, out, {"02": PREVIOUS})
    assert len(paths) == len(nasty) == len({p.name for p in paths})
    for p, agency in zip(paths, nasty):
        assert p.parent == out and p.is_file() and p.suffix == ".xlsx"
        assert not re.search(r'[<>:"/\\|?*\x00-\x1f]', p.name) and ".." not in p.name
        assert p.name.split(".")[0].strip().upper() not in {"CON", "PRN", "AUX", "NUL"}
        assert len(p.name.encode("utf-8")) <= template.MAX_FILE_NAME_BYTES
        assert p.name.endswith(f"_{YEAR}{template.PREFILLED_SUFFIX}")
        wb = openpyxl.load_workbook(p)
        assert _v(wb, "INFO_agency_code").value == agency.code  # the value is kept verbatim, only the name is safe
    wb = openpyxl.load_workbook(paths[1])
    assert _v(wb, spec.cell_name("三", "carried_in", "natural")).value == \
        PREVIOUS[spec.cell_name("三", "carried_over", "natural")]
    assert sorted(out.iterdir()) == sorted(paths)  # no temp files left


@pytest.mark.parametrize("raw", ["CON.xlsx", "con .xlsx", "中" * 200 + ".xlsx", "a/../b.xlsx", "..", "x" * 300 + ".xlsx", " .lpt1 .xlsx", "a\nb"])
def test_sanitise_file_name(raw):
    name = template.sanitise_file_name(raw)
    assert name and "/" not in name and "\\" not in name and ".." not in name and "\n" not in name
    assert name.split(".")[0].strip().upper() not in {"CON", "LPT1"}
    assert len(name.encode("utf-8")) <= template.MAX_FILE_NAME_BYTES
    assert not name.endswith((".", " "))


# ---- fill -------------------------------------------------------------------------------------------------


def test_fill_stores_formula_like_text_as_text(tmp_path):
    wb = template.build_workbook(YEAR)
    template.fill(wb, {"TXT_overview": "=1+1", "INFO_agency_name": "=HYPERLINK(\"x\")", "T3_new_natural": "=A1"})
    back = _save_load(wb, tmp_path)
    for name, text in [("TXT_overview", "=1+1"), ("INFO_agency_name", '=HYPERLINK("x")'), ("T3_new_natural", "=A1")]:
        cell = _v(back, name)
        assert cell.value == text and cell.data_type == "s", name


def test_fill_numbers_and_decimals(tmp_path):
    wb = template.build_workbook(YEAR)
    template.fill(wb, {"T2_fees_amount": Decimal("9116.3612"), "T3_new_natural": 5, "FEE_fee_notices": 2,
                       "TXT_problems": None})
    back = _save_load(wb, tmp_path)
    assert _v(back, "T2_fees_amount").value == pytest.approx(9116.3612)
    assert _v(back, "T3_new_natural").value == 5
    assert _v(back, "TXT_problems").value is None
    with zipfile.ZipFile(tmp_path / "wb.xlsx") as zf:
        sheet = zf.read(f"xl/worksheets/sheet{spec.SHEETS.index(spec.T2_SHEET) + 1}.xml").decode()
    assert "<v>9116.3612</v>" in sheet  # the exact literal, for the reader's Decimal


def test_fill_refuses_computed_and_unknown_names():
    wb = template.build_workbook(YEAR)
    with pytest.raises(ValueError, match="T3_new_total"):
        template.fill(wb, {"T3_new_total": 3})
    with pytest.raises(ValueError, match="NO_SUCH_NAME"):
        template.fill(wb, {"NO_SUCH_NAME": 3})
    with pytest.raises(ValueError):
        template.fill(wb, {next(iter(spec.T2_REFERENCE_NAMES.values())): 3})
    assert _v(wb, "T3_new_natural").value == 0  # nothing written on refusal


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT)
def test_fill_any_text_roundtrips_as_text(tmp_path, text):
    wb = template.build_workbook(YEAR)
    template.fill(wb, {"TXT_other_matters": text})
    back = _save_load(wb, tmp_path)
    cell = _v(back, "TXT_other_matters")
    assert cell.data_type == "s" and cell.value == text


# ---- the reader accepts what the template writes ----------------------------------------------------------


def test_reader_reads_a_filled_prefilled_workbook(tmp_path):
    read = pytest.importorskip("pipeline.read")
    wb = template.build_workbook(YEAR, AGENCY, PREVIOUS)
    template.fill(wb, {"T3_new_natural": 4, "T3_granted_natural": 3, "T2_fees_amount": Decimal("1.25"),
                       "TXT_overview": "=本年度"})
    path = save_workbook(wb, tmp_path / "x.xlsx")
    batch = read.read_batch([path], YEAR, None)
    (data,) = batch.agency_data()
    assert data.values["T3_new_natural"] == 4
    assert data.values["T2_fees_amount"] == Decimal("1.25")
    assert data.values[spec.cell_name("三", "carried_in", "natural")] == 1
    assert data.fields["TXT_overview"] == "=本年度"
    assert data.fields["INFO_report_year"] == YEAR
    assert data.fields["META_format_version"] == spec.FORMAT_VERSION


def test_fill_refuses_control_characters_but_roster_values_are_cleaned(tmp_path):
    wb = template.build_workbook(YEAR)
    with pytest.raises(ValueError, match="TXT_overview"):
        template.fill(wb, {"TXT_problems": "ok", "TXT_overview": "a\x07b"})
    assert _v(wb, "TXT_problems").value is None  # nothing written on refusal
    wb = _save_load(template.build_workbook(YEAR, Agency("01", "名称\x07", spec.CATEGORY_LABELS[1])), tmp_path)
    assert _v(wb, "INFO_agency_name").value == "名称"


@pytest.mark.parametrize("value, literal", [(Decimal("9116.3612"), "9116.3612"), (0.1, "0.1"),
                                            (Decimal("2E+1"), "20"), (Decimal("1.50"), "1.5"), (3, "3")])
def test_numbers_written_as_exact_literals(tmp_path, value, literal):
    wb = template.build_workbook(YEAR)
    template.fill(wb, {"T2_fees_amount": value})
    save_workbook(wb, tmp_path / "n.xlsx")
    with zipfile.ZipFile(tmp_path / "n.xlsx") as zf:
        sheet = zf.read(f"xl/worksheets/sheet{spec.SHEETS.index(spec.T2_SHEET) + 1}.xml").decode()
    ref = spec.CELL["T2_fees_amount"].ref
    assert re.search(rf'<c r="{ref}"[^>]*t="n"[^>]*><v>{re.escape(literal)}</v>', sheet), sheet[:0]


def test_print_setup_and_readable_layout(blank):
    for ws in blank.worksheets:
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4 == "9", ws.title
        landscape = ws.title in (spec.T3_SHEET, spec.T4_SHEET)
        assert ws.page_setup.orientation == ("landscape" if landscape else "portrait"), ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    for f in spec.FIELDS:
        ws = blank[f.sheet]
        assert ws[f.ref].alignment.wrap_text, f.name
        if f.kind == "text" and f.sheet != spec.SHEET_INFO:
            assert ws.column_dimensions["B"].width >= 60
            assert ws.row_dimensions[int(f.ref[1:])].height >= 100, f.name
    for lab in spec.LABELS:
        assert blank[lab.sheet][lab.ref].alignment.wrap_text, (lab.sheet, lab.ref)
        if lab.role != "title":
            assert blank[lab.sheet][lab.ref].border.left.style == "thin", (lab.sheet, lab.ref)
    for c in spec.CELLS:
        assert blank[c.sheet][c.ref].border.bottom.style == "thin", c.name


def test_partial_previous_fills_only_what_it_has(tmp_path):
    src = spec.cell_name("三", "carried_over", "natural")
    wb = _save_load(template.build_workbook(YEAR, AGENCY, {src: 4}), tmp_path)
    natural = _v(wb, spec.cell_name("三", "carried_in", "natural"))
    business = _v(wb, spec.cell_name("三", "carried_in", "business"))
    assert natural.value == 4 and natural.protection.locked
    assert business.value == 0 and not business.protection.locked


def test_worksheets_hold_chinese_as_utf8_not_character_references(tmp_path):
    """openpyxl's lxml writer escapes every Chinese character (三 → &#19977;); the saved workbook holds them as
    UTF-8 (smaller, faster to read): the same cells, markup characters still escaped."""
    from xml.etree import ElementTree as ET

    from pipeline import ooxml

    path = template.write_blank(tmp_path, YEAR)
    with zipfile.ZipFile(path) as z:
        sheets = {n: z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
    assert sheets
    for name, xml in sheets.items():
        assert not re.search(rb"&#(?:1[3-9][0-9]|[2-9][0-9]{2}|[0-9]{4,});", xml), name  # no ref of a char ≥ 128
    assert spec.LABELS[0].text.encode("utf-8") in b"".join(sheets.values())
    wb = openpyxl.load_workbook(path)
    for lab in spec.LABELS[:40]:
        assert str(wb[lab.sheet][lab.ref].value).strip() == lab.text.strip()
    # the function itself: the same document, markup and whitespace references kept
    x = b'<a t="&#19977;&#10;">&#x4E09;&#60;&#38;</a>'
    y = ooxml.utf8_text(x)
    assert y == '<a t="三&#10;">三&#60;&#38;</a>'.encode()
    assert (ET.fromstring(x).text, ET.fromstring(x).attrib) == (ET.fromstring(y).text, ET.fromstring(y).attrib)
    ascii_declared = b'<?xml version="1.0" encoding="ascii"?><a>&#19977;</a>'
    assert ooxml.utf8_text(ascii_declared) == ascii_declared
