"""The bad-input corpus (tests/corpus.py) through the whole January run, one case at a time and all together.

For every case: the run finishes; every input file gets a verdict in manifest.json (with its SHA-256); the
expected findings come with their sheet and cells, and no other 错误; the valid agencies still get their
Word reports and the broken ones none; nothing is written outside the output folder and the inputs keep
their bytes; every .docx and .xlsx written opens (python-docx, openpyxl), no temporary file is left, and no
agency text became a formula in any output workbook.

The runs (about fifty, a second each) are started once per session in worker processes, all at once, and
each test waits for its own. The one-case runs put a 1×1 picture in place of the county summary's charts
(most of a small run's time); the run over all cases together draws the real charts, with every name.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import zipfile
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as C

from pipeline import county_xlsx, export, parallel, read, run, workspace, xlsx_reader
from pipeline import findings as F

YEAR = C.YEAR
KEYS = [c.key for c in C.CASES]
TOGETHER = "__all__"
TOGETHER_DIR = "all"
#: Codes that concern a whole file or agency, or a sheet that is gone: no cell to name.
NO_CELL = {c.code for c in F.REGISTRY.values() if c.group == "文件"} | {
    "NOT_TEMPLATE", "SHEET_MISSING", "AGENCY_MISSING", "STRUCTURE_CHANGED"}
PASSED = {"通过", "有提示"}


# ---- running -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus_built(tmp_path_factory) -> Path:
    """Every case's files, generated once per session (``C.build``)."""
    return C.build(tmp_path_factory.mktemp("corpus-built"))


@pytest.fixture(scope="session")
def corpus_runs(request, tmp_path_factory, corpus_built) -> dict[str, Future]:
    """Every selected case's run (and the all-together run), submitted at once to a process pool."""
    wanted: set[str] = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "key" in params:
            wanted.add(params["key"])
        elif item.name == "test_all_cases_together_in_one_workspace":
            wanted.add(TOGETHER)
    base = tmp_path_factory.mktemp("corpus")
    built = corpus_built
    pool = ProcessPoolExecutor(max_workers=parallel.default_jobs(), mp_context=multiprocessing.get_context("spawn"))
    futures: dict[str, Future] = {}
    if TOGETHER in wanted:  # the longest first
        futures[TOGETHER] = pool.submit(C.prepare_and_execute, base / TOGETHER_DIR, tuple(KEYS), True, 2, True, built)
    for key in KEYS:
        if key in wanted:
            futures[key] = pool.submit(C.prepare_and_execute, base / key, (key,), False, 1, False, built)
    yield futures
    pool.shutdown(cancel_futures=True)


# ---- what a run left -------------------------------------------------------------------------------------


def docx_text(path: Path) -> str:
    doc = Document(path)
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts += [cell.text for cell in row.cells]
    return "\n".join(parts)


class Audit:
    """Every file under the output folder: listed in the manifest (or the manifest itself), no temporary file,
    and whole — each .docx opens with python-docx, each .xlsx with openpyxl (as a plain workbook, no macros),
    each .json parses. Keeps the reports' text, every formula cell and the text cells of 校验结果.xlsx."""

    def __init__(self, out: Path, manifest: dict):
        listed = {o["file"] for o in manifest["outputs"]}
        on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert on_disk == listed | {run.MANIFEST}, "files under the output folder vs the manifest's outputs"
        self.texts: dict[Path, str] = {}
        self.formulas: list[tuple[str, str, str, object]] = []  # (file, sheet, cell, formula)
        self.result_cells: set[str] = set()
        for name in sorted(on_disk):
            path = out / name
            assert not (path.name.startswith(".") or path.name.endswith(".tmp")), f"temporary file left: {name}"
            assert path.resolve().is_relative_to(out.resolve())
            if path.suffix == ".docx":
                self.texts[path] = docx_text(path)
            elif path.suffix == ".xlsx":
                self._workbook(path, name, name == export.RESULT_XLSX)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            else:
                raise AssertionError(f"unexpected output {name}")

    def _workbook(self, path: Path, name: str, keep_text: bool) -> None:
        with zipfile.ZipFile(path) as zf:
            types = zf.read("[Content_Types].xml").decode("utf-8")
        assert "spreadsheetml.sheet.main+xml" in types and "macroEnabled" not in types, name
        wb = load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        self.formulas.append((name, ws.title, cell.coordinate, cell.value))
                    elif keep_text and cell.data_type == "s" and cell.value is not None:
                        self.result_cells.add(str(cell.value))
        wb.close()


def check(outcome: C.Outcome, cases: list[C.Case], *, full: bool) -> None:
    assert not outcome.error, f"the run raised:\n{outcome.error}"
    out = outcome.out
    manifest = json.loads((out / run.MANIFEST).read_text(encoding="utf-8"))
    findings = json.loads((out / export.RESULT_JSON).read_text(encoding="utf-8"))
    expects = [(c, e) for c in cases for e in c.expects]

    # nothing outside the output folder; the inputs keep their bytes
    assert outcome.after == outcome.before, "files under the workspace changed, appeared or vanished"
    assert {p.name for p in outcome.root.iterdir()} == {"ws", "out"}
    assert {p.name for p in outcome.root.parent.iterdir()} <= set(KEYS) | {TOGETHER_DIR}
    assert {p.name for p in outcome.out.parent.iterdir()} == {str(YEAR)}

    # every input file has a verdict, with its hash
    bystanders = C.bystanders(full)
    by_file = {i["file"]: i for i in manifest["inputs"]}
    assert len(by_file) == len(manifest["inputs"]), "one verdict per file"
    expected_files = {C.sample_book(a.code).name for a in bystanders} | {e.file for _, e in expects}
    assert set(by_file) == expected_files
    ws_files = {k.removeprefix(f"ws/{YEAR}/"): v for k, v in outcome.before.items() if k.startswith(f"ws/{YEAR}/")}
    for c, e in expects:
        entry = by_file[e.file]
        assert entry["sha256"] == ws_files[C.on_disk(e, c)], e.file
        assert entry["status"] == e.status, (e.file, entry)
        assert entry["reason"], e.file
        if e.status == "read":
            assert entry["verdict"] in (PASSED if e.report else {"有错误"}), (e.file, entry["verdict"])
        elif e.status == "rejected":
            assert entry["verdict"] == "有错误" or not entry["agency"], (e.file, entry)
            assert set(entry["codes"]) == {w.code for w in e.wants}, (e.file, entry["codes"])
        else:
            assert entry["verdict"] is None and not entry["codes"], (e.file, entry)
    for a in bystanders:
        entry = by_file[C.sample_book(a.code).name]
        assert entry["status"] == "read" and entry["verdict"] in (PASSED if full else {"通过"}), entry

    # the expected findings, with sheet and cells; no other 错误
    for f in findings:
        assert f["code"] in F.REGISTRY
        if f["code"] not in NO_CELL and f["code"] != "AGENCY_MISSING":
            assert f["file"] and f["sheet"] and f["cells"], f
    for c, e in expects:
        mine = [f for f in findings if f["file"] == e.file]
        for w in e.wants:
            hits = [f for f in mine if f["code"] == w.code and (w.sheet is None or f["sheet"] == w.sheet)
                    and set(w.cells) <= set(f["cells"])]
            assert hits, (e.file, w, [(f["code"], f["sheet"], f["cells"]) for f in mine])
        errors = {f["code"] for f in mine if f["severity"] == "error"}
        assert errors <= {w.code for w in e.wants} | set(e.also), (e.file, errors)
        if e.status == "ignored":
            assert not mine

    # outputs: listed, whole, no temp files; the valid agencies' reports, and only theirs
    audit = Audit(out, manifest)
    texts = audit.texts
    reports = {p: t for p, t in texts.items() if "（全县汇总）" not in p.name}
    assert len(texts) - len(reports) == 1, "one county summary"
    passing = list(bystanders) + [a for c in cases for a in c.agencies
                                   if any(e.report for e in c.expects if _agency_of(c, e) == a)]
    assert len(reports) == len(passing), (sorted(p.name for p in reports), [a.name for a in passing])
    for a in passing:
        title = f"{a.name}{YEAR}年政府信息公开工作年度报告"
        mine = [t for t in reports.values() if title in t]
        assert len(mine) == 1, title
    for c in cases:
        for text in c.report_texts:
            title = f"{c.agency.name}{YEAR}年政府信息公开工作年度报告"
            body = next(t for t in reports.values() if title in t)
            assert text in body, (c.key, text)
    for t in texts.values():
        assert "_x00" not in t and "_xD8" not in t, "Excel escapes leaked into a report"

    # agency text never becomes a formula: none at all in the office's workbooks; in the returned copies only
    # the template's totals and the agency's own formulas
    assert not [f for f in audit.formulas if f[0] in (export.RESULT_XLSX, county_xlsx.FILENAME)]
    injected = {t for c in cases for t in c.formula_texts}
    bad = [f for f in audit.formulas if str(f[3]) in injected or any(str(f[3]).startswith(t[:12]) for t in injected)]
    assert not bad, bad
    for c in cases:
        for text in c.results_texts:
            assert any(text in v for v in audit.result_cells), (c.key, text)

    # the exit code: 0 only when every agency passed
    assert outcome.exit_code == (0 if all(e.report or e.status == "ignored" for _, e in expects) else 1)


def _agency_of(c: C.Case, e: C.Expect):
    """The roster agency a case's file belongs to (one file per agency, in order; or the case's only one)."""
    if len(c.agencies) == 1:
        return c.agencies[0]
    i = c.expects.index(e)
    return c.agencies[i] if i < len(c.agencies) else None


# ---- the tests -----------------------------------------------------------------------------------------------


def test_the_corpus_is_large_and_well_formed():
    assert len(C.CASES) >= 30 and len(KEYS) == len(set(KEYS))
    files = [e.file for c in C.CASES for e in c.expects]
    assert len(files) == len(set(files))
    agencies = [a for c in C.CASES for a in c.agencies]
    assert len({a.code for a in agencies}) == len(agencies) and len({a.name for a in agencies}) == len(agencies)
    for c in C.CASES:
        assert c.expects, c.key
        for e in c.expects:
            assert e.status in ("read", "rejected", "ignored")
            assert all(w.code in F.REGISTRY for w in e.wants) and all(code in F.REGISTRY for code in e.also)
            assert e.status == "ignored" or e.wants or e.report, f"{c.key}: a broken file must expect a finding"
    statuses = {e.status for c in C.CASES for e in c.expects}
    assert statuses == {"read", "rejected", "ignored"}


@pytest.mark.parametrize("key", KEYS)
def test_case(key, corpus_runs):
    check(corpus_runs[key].result(), [C.CASE[key]], full=False)


def test_all_cases_together_in_one_workspace(corpus_runs):
    """The whole sample county and every case in one year folder, read and rendered with 2 processes."""
    check(corpus_runs[TOGETHER].result(), list(C.CASES), full=True)


NAMED = ("name_path_traversal", "name_windows_reserved", "name_windows_chars", "name_too_long", "name_formula",
         "names_collide", "control_chars", "xml_specials", "formula_text", "merge_broken", "external_formula_no_value")


def test_next_years_prefilled_workbooks_for_hostile_names(corpus_built, tmp_path):
    """`nianbao template` for 2025 over a roster of hostile names, carrying over from the corpus's 2024 files:
    one workbook per agency, all inside their folder, whole, each agency's name in it as text."""
    root = C.write_case_workspace(tmp_path / "ws", [C.CASE[k] for k in NAMED], built=corpus_built)
    before = C.snapshot(tmp_path, tmp_path / "out")
    ws = workspace.load(root)
    result = run.write_prefilled_templates(ws, YEAR + 1, tmp_path / "out")
    assert C.snapshot(tmp_path, tmp_path / "out") == before
    assert len(result.paths) == len({p.name.casefold() for p in result.paths}) == len(ws.agencies)
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == sorted(result.paths)
    for path in result.paths:
        assert path.parent == result.folder and len(path.name.encode("utf-8")) <= 200
    names = {}
    for path in result.paths:
        wb = load_workbook(path)
        sheet, a1 = C.pos("INFO_agency_name")
        cell = wb[sheet][a1]
        assert cell.data_type == "s", (path.name, cell.value)
        names[cell.value] = path
        wb.close()
    assert set(names) == {a.name for a in ws.agencies}


def test_bombs_are_refused_from_their_declared_sizes(tmp_path, monkeypatch):
    """The zip bomb is refused before any of it is inflated: no entry of it is ever opened."""
    C.zip_bomb(C.reidentified(C.victim("x", name="示例县试验局")), tmp_path / "bomb.xlsx", 64 * 1024 * 1024)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **kw):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *a, **kw)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    batch = read.read_batch([tmp_path / "bomb.xlsx"], YEAR)
    assert [v.codes for v in batch.files] == [("FILE_TOO_LARGE",)] and opened == []


def test_the_encrypted_and_xls_files_are_well_formed_compound_files():
    """The OLE files of the corpus are what the reader meets in the wild: header, FAT and named streams."""
    for data, names in ((C.encrypted_ooxml(), ("EncryptionInfo", "EncryptedPackage")), (C.biff8_xls(), ("Workbook",))):
        assert data[:8] == bytes.fromhex("D0CF11E0A1B11AE1") and len(data) % 512 == 0
        directory = data[1024:1536]
        for i, name in enumerate(("Root Entry",) + names):
            entry = directory[i * 128:(i + 1) * 128]
            size = int.from_bytes(entry[64:66], "little")
            assert entry[: size - 2].decode("utf-16-le") == name


def test_excel_string_escapes_are_decoded_and_made_safe():
    assert xlsx_reader.xstring("一_x000B_二") == "一\n二"
    assert xlsx_reader.xstring("_x005F_x0041_") == "_x0041_"  # Excel's escape of a literal "_x0041_"
    assert xlsx_reader.xstring("_xD83D__xDE00_") == "😀" and xlsx_reader.xstring("a_xD83D_b") == "a\ufffdb"
    assert xlsx_reader.xstring("a\r\nb\x07c\x00") == "a\nbc"
    for text in ("普通文字 😀", "=1+1", "a\tb"):
        assert xlsx_reader.xstring(text) == text


def test_undecodable_file_names_are_shown_decoded():
    import os

    gbk = os.fsdecode("示例县财政局.xlsx".encode("gbk"))
    assert read.readable_name(gbk) == "示例县财政局.xlsx"
    assert read.readable_name("正常.xlsx") == "正常.xlsx"
    assert read._unique_names(["a.xlsx", "b.xlsx", "a.xlsx"]) == ["a.xlsx", "b.xlsx", "a（2）.xlsx"]


def test_returned_copy_names_stay_unique_when_cut():
    """Long agency names and file names are cut to fit a file name; the copies' names stay distinct."""
    taken: set[str] = set()
    name = "示例县" + "长名称单位" * 30 + "局"
    names = [export.return_name(name, f"{name}2024年报（第{i}版）.xlsx", taken) for i in range(6)]
    assert len({n.casefold() for n in names}) == 6
    assert all(len(n.encode("utf-8")) <= 200 and "/" not in n for n in names)
