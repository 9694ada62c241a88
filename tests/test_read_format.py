"""The reading stage per format: a workbook of another format is read under that format (its cells, names and
labels), in this process and in forked workers, and the 2021 sample reads exactly as before in the same process.

The variant is test-only (as in test_format_variant.py): 2021 with one more applicant column in table 三 (基金会,
under 法人或其他组织). Its workbooks are written here by hand with openpyxl — every label, input cell, field and
defined name at the variant's positions — so that the test depends on the reader alone.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
import sys

import pandas as pd
import pytest
from openpyxl import Workbook
from openpyxl.workbook.defined_name import DefinedName

sys.path.insert(0, str(Path(__file__).resolve().parent))

from variant_format import with_foundation_column

from pipeline import parallel, read, spec, workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
VERSION = "2021-test-foundation"
STRUCTURE = {"LABEL_CHANGED", "NAME_MISSING", "STRUCTURE_CHANGED", "SHEET_MISSING", "CELL_OUTSIDE", "NOT_TEMPLATE"}


VARIANT = spec.register(with_foundation_column(spec.DEFINITION_2021, VERSION))
BASE = spec.load("2021")


def _quoted(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def write_workbook(fmt: spec.Format, path: Path, values: dict[str, object], fields: dict[str, object]) -> Path:
    """A workbook of ``fmt`` by hand: its labels, the given input cells and fields, every defined name."""
    wb = Workbook()
    wb.remove(wb.active)
    sheets = {name: wb.create_sheet(name) for name in spec.SHEETS}
    for lab in fmt.LABELS:
        sheets[lab.sheet][lab.ref] = lab.text
    for c in fmt.INPUT_CELLS:
        if c.name in values:
            sheets[c.sheet][c.ref] = values[c.name]
    for f in fmt.FIELDS:
        if fields.get(f.name) not in (None, ""):
            sheets[f.sheet][f.ref] = fields[f.name]
    for name, (sheet, ref) in fmt.all_defined_names().items():
        col = ref.rstrip("0123456789")
        wb.defined_names[name] = DefinedName(name, attr_text=f"{_quoted(sheet)}!${col}${ref[len(col):]}")
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def sample():
    ws = workspace.load(SAMPLE)
    return ws, read.read_batch(ws.files(YEAR), YEAR, ws, fmt=BASE)


def _new(row: str, fmt: spec.Format = VARIANT) -> str:
    return fmt.cell_name("三", row, "foundation")


@pytest.fixture(scope="module")
def county(tmp_path_factory, sample):
    """Two agencies of the sample county, their 2024 figures and texts in workbooks of the variant, the new
    column filled (3 and 2 new requests of foundations, all 予以公开)."""
    ws0, figures = sample
    root = tmp_path_factory.mktemp("variant")
    (root / str(YEAR)).mkdir()
    for name in ("county.toml", "agencies.csv"):
        (root / name).write_bytes((SAMPLE / name).read_bytes())
    agencies = figures.agency_data()[:2]
    for a, n in zip(agencies, (3, 2)):
        values = {name: v for name, v in a.values.items() if name in VARIANT.CELL}
        values.update({_new("new"): n, _new("granted"): n, _new("carried_in"): 0})
        write_workbook(VARIANT, root / str(YEAR) / Path(a.file).name, values, a.fields)
    return workspace.load(root), agencies


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_variant_workbook_reads_under_the_variant(county, jobs):
    ws, agencies = county
    figures = read.read_batches([(ws.files(YEAR), YEAR)], ws, jobs=jobs, fmt=VARIANT)[0]
    assert figures.format is VARIANT and spec.current() is BASE
    assert [v.status for v in figures.files] == ["read", "read"]
    assert not {f.code for f in figures.findings} & STRUCTURE, [(f.code, f.sheet, f.cells) for f in figures.findings]
    assert len(figures.values) == 2 * len(VARIANT.CELLS) and len(figures.texts) == 2 * len(VARIANT.FIELDS)
    for got, a, n in zip(figures.agency_data(), agencies, (3, 2)):
        assert got.code == a.code and got.fields == a.fields
        assert got.values[_new("new")] == n and got.values[_new("granted")] == n
        for row in ("new", "granted"):  # the totals sum the new column too
            total = VARIANT.cell_name("三", row, "total")
            assert got.values[total] == a.values[total] + n
        assert {c.name: got.values[c.name] for c in BASE.INPUT_CELLS} == {c.name: a.values[c.name]
                                                                         for c in BASE.INPUT_CELLS}
    row = figures.values[figures.values["name"] == _new("new")].iloc[0]
    cell = VARIANT.CELL[_new("new")]
    assert (row["sheet"], row["cell"], row["column"], row["status"]) == (cell.sheet, cell.ref, "基金会", "ok")


def test_a_variant_workbook_read_as_2021_is_reported_not_misread(county):
    ws, agencies = county
    figures = read.read_batch(ws.files(YEAR), YEAR, ws, fmt=BASE)
    assert figures.format is BASE
    moved = [f for f in figures.findings if f.code == "STRUCTURE_CHANGED"]
    assert {f.sheet for f in moved} == {spec.T3_SHEET} and len(moved) == 2  # one per workbook
    assert _new("new") not in figures.agency_data()[0].values
    # read by name: every 2021 cell is the agency's own figure, wherever the inserted column moved it
    assert figures.agency_data()[0].values == dict(agencies[0].values)


def test_2021_reads_the_sample_identically_beside_the_variant(sample, county):
    ws, before = sample
    for jobs in (1, 2):
        with spec.using(VARIANT):  # the format of the caller does not matter: the one given does
            after = read.read_batch(ws.files(YEAR), YEAR, ws, fmt=BASE, jobs=jobs)
        assert after.format is BASE
        pd.testing.assert_frame_equal(after.values, before.values)
        pd.testing.assert_frame_equal(after.texts, before.texts)
        assert after.findings == before.findings and after.files == before.files
        assert after.agency_data() == before.agency_data()
    assert "T3_new_foundation" not in before.agency_data()[0].values


def test_tables_derived_from_the_format_are_per_format():
    with spec.using(VARIANT):
        variant = (read._totals_order(), read._defined_names(), read._labels(), read._spec_values())
    base = (read._totals_order(), read._defined_names(), read._labels(), read._spec_values())
    assert _new("new") in variant[1] and _new("new") not in base[1]
    assert any(_new("new") in c.addends for c in variant[0]) and not any("foundation" in c.name for c in base[0])
    assert "基金会" in {lab.text for lab, _ in variant[2]} and "基金会" not in {lab.text for lab, _ in base[2]}
    assert len(variant[3]["name"]) == len(VARIANT.CELLS) and len(base[3]["name"]) == len(BASE.CELLS)
    assert read._totals_order() is base[0]  # computed once per format


def _format_here(_job) -> tuple[str, int]:
    return spec.current().FORMAT_VERSION, len(spec.CELLS)


def test_forked_workers_inherit_the_format():
    """A pool forked under a format: its workers run under it (the context variable is inherited)."""
    with spec.using(VARIANT), parallel.Pool(2, None) as pool:
        forked = pool.parallel
        got = [t.result() for t in [pool.submit(_format_here) for _ in range(4)]]
    assert got == [(VERSION, len(VARIANT.CELLS))] * 4
    if not forked:
        pytest.skip("no fork on this platform: the tasks ran in this process")
    with parallel.Pool(2, None) as pool:
        assert pool.submit(_format_here).result() == ("2021", len(BASE.CELLS))


def test_money_and_counts_keep_their_types_under_the_variant(county):
    ws, agencies = county
    got = read.read_batch(ws.files(YEAR), YEAR, ws, fmt=VARIANT).agency_data()[0]
    for c in VARIANT.CELLS:
        assert type(got.values[c.name]) is (Decimal if c.kind == "money" else int), c.name
