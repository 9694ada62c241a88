"""The importer's fast paths: workbooks written into the template's XML parts (importer/fastxlsx.py) read back
through read.py exactly as the openpyxl workbooks (output.build_plan) do; .docx bodies parsed with lxml give the
document model python-docx gives.

Over the sample county's 12 rendered reports and every published fixture, with and without a roster agency.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import read, run, spec, workspace
from pipeline.importer import document, fastxlsx, output, recognise

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
FIXTURES = ROOT / "tests" / "fixtures" / "published"
YEAR = 2024
INFO = {"source": "来源.docx", "sha256": "ab" * 32, "kind": "Word 文档", "verdict": "导入成功"}
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def ws():
    return workspace.load(SAMPLE)


@pytest.fixture(scope="module")
def reports(ws, tmp_path_factory) -> list[Path]:
    """The sample's 12 agency reports (rendered) and every published fixture's source."""
    out = tmp_path_factory.mktemp("rendered")
    assert run.run(ws, YEAR, out, render=True, jobs=2).exit_code == 0
    rendered = sorted(p for p in (out / str(YEAR)).glob("*.docx") if "全县汇总" not in p.name)
    assert len(rendered) == len(ws.agencies) == 12
    published = sorted(p for p in FIXTURES.iterdir()
                       if document.kind_of(p) and not p.name.endswith(".json") and p.name != "README.md")
    assert published
    return rendered + published


@pytest.fixture(scope="module")
def recognised(reports) -> list[tuple[Path, recognise.Recognised]]:
    return [(p, recognise.recognise(document.extract(p))) for p in reports]


def _read(path: Path):
    batch = read.read_batch([path], YEAR, None)
    assert [f.status for f in batch.files] == ["read"]
    a = batch.agency_data()[0]
    return a.values, a.fields


def test_fast_workbooks_read_back_as_openpyxl_workbooks(recognised, ws, tmp_path):
    agencies = [None, ws.agencies[0], ws.agencies[-1]]
    unreadable = 0
    for i, (src, rec) in enumerate(recognised):
        for k, agency in enumerate(agencies):
            p = output.plan(rec, rec.year or YEAR, agency=agency, **INFO)
            unreadable += len(p.unreadable)
            fast, slow = fastxlsx.workbook_bytes(p), output.workbook_bytes(p)
            assert fastxlsx.differences(fast, slow) == [], src.name
            a, b = tmp_path / f"{i}_{k}_fast.xlsx", tmp_path / f"{i}_{k}_openpyxl.xlsx"
            a.write_bytes(fast)
            b.write_bytes(slow)
            assert _read(a) == _read(b), src.name
    assert fastxlsx.problem() == ""  # every workbook above came from the fast path
    assert unreadable > 0  # the seed's table 四 and a digit run left open: notes on cells


def test_differences_sees_a_changed_cell_and_a_note(recognised):
    rec = recognised[0][1]
    p = output.plan(rec, YEAR, **INFO)
    slow = output.workbook_bytes(p)
    name = spec.cell_name("三", "new", "natural")
    changed = dataclasses.replace(p, inputs={**p.inputs, name: p.inputs[name] + 1})
    assert fastxlsx.differences(fastxlsx.workbook_bytes(changed), slow)
    noted = dataclasses.replace(p, inputs={k: v for k, v in p.inputs.items() if k != name}, unreadable={name: "x"})
    diff = fastxlsx.differences(fastxlsx.workbook_bytes(noted), slow)
    assert any("comment" in d for d in diff) and any(".vml" in d for d in diff)


def test_texts_are_escaped_and_read_back_exactly(tmp_path):
    texts = {
        "TXT_overview": "A & B < C > D \"引号\" '单引号' ]]> &amp; 😀 第二行\n第三行",
        "TXT_problems": "  前有空格",
        "TXT_improvements": "字面的 _x000D_ 与 _x005F_ 不是转义",
        "INFO_agency_name": "某局<script>",
    }
    rec = recognise.Recognised(year=YEAR, agency="某局<script>", title="t", texts=texts)
    p = output.plan(rec, YEAR, **INFO)
    path = tmp_path / "fast.xlsx"
    path.write_bytes(fastxlsx.workbook_bytes(p))
    _, fields = _read(path)
    for name, value in texts.items():
        assert fields[name] == value, name
    slow = tmp_path / "openpyxl.xlsx"
    slow.write_bytes(output.workbook_bytes(p))
    assert _read(slow)[1] == fields


def test_a_template_it_cannot_read_is_written_by_openpyxl(recognised, monkeypatch):
    rec = recognised[0][1]
    p = output.plan(rec, YEAR + 1, **INFO)  # a year no base was built for
    monkeypatch.setattr(fastxlsx, "_CELL_RE", fastxlsx.re.compile(rb"(?!)(x)(y)"))  # finds no cell
    monkeypatch.setattr(fastxlsx, "_disabled", "")
    monkeypatch.setattr(fastxlsx, "_bases", {})
    data = fastxlsx.workbook_bytes(p)
    assert "not found in the template's XML" in fastxlsx.problem()
    assert fastxlsx.differences(data, output.workbook_bytes(p)) == []


def test_a_base_that_differs_from_openpyxl_turns_the_fast_path_off(recognised, monkeypatch):
    rec = recognised[0][1]
    p = output.plan(rec, YEAR, **INFO)
    monkeypatch.setattr(fastxlsx, "_disabled", "")
    monkeypatch.setattr(fastxlsx, "_bases", {})
    monkeypatch.setattr(fastxlsx, "_literal", lambda v: b"7")  # every number written wrong
    data = fastxlsx.workbook_bytes(p)
    assert "differs from openpyxl" in fastxlsx.problem()
    assert fastxlsx.differences(data, output.workbook_bytes(p)) == []  # openpyxl's workbook was returned


def test_docx_bodies_parsed_with_lxml_are_python_docx_bodies(reports, monkeypatch):
    docx_files = [p for p in reports if p.suffix == ".docx"]
    fast = [document.extract(p) for p in docx_files]
    monkeypatch.setattr(document, "_docx_body", lambda data: None)  # python-docx opens the package
    assert fast == [document.extract(p) for p in docx_files]


def test_a_fast_workbook_opens_in_libreoffice(recognised, ws, tmp_path):
    if SOFFICE is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but LibreOffice (soffice) is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    src, rec = next((s, r) for s, r in recognised if r.unreadable)  # notes on cells as well
    path = tmp_path / "fast.xlsx"
    path.write_bytes(fastxlsx.workbook_bytes(output.plan(rec, rec.year or YEAR, agency=ws.agencies[0], **INFO)))
    subprocess.run([SOFFICE, f"-env:UserInstallation={(tmp_path / 'profile').resolve().as_uri()}", "--headless",
                    "--norestore", "--convert-to", "xlsx", "--outdir", str(tmp_path / "lo"), str(path)],
                   check=True, capture_output=True, timeout=180)
    import openpyxl

    wb = openpyxl.load_workbook(tmp_path / "lo" / path.name)
    assert wb.sheetnames == [*spec.SHEETS, output.SOURCE_SHEET]
    c = spec.CELL[rec.unreadable[0]]
    assert wb[c.sheet][c.ref].value == output.UNREADABLE_MARK
    assert "无法从原文读取" in wb[c.sheet][c.ref].comment.text
    assert wb[spec.SHEET_INFO][spec.FIELD["INFO_agency_name"].ref].value == ws.agencies[0].name
    assert wb[output.SOURCE_SHEET]["B2"].value == INFO["source"]
