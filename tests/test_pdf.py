"""PDF: one soffice batch converts the reports, and the PDFs embed CJK fonts (not only extractable text).

Skipped with a reason when LibreOffice is not installed, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from test_render_data import county_batch, seed_agency, workspace

from pipeline import aggregate, pdf, render

IN_CI = os.environ.get("CI", "").lower() == "true"


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if IN_CI:
            pytest.fail(f"{tool} is required in CI (install libreoffice-writer-nogui, poppler-utils, fonts-noto-cjk)")
        pytest.skip(f"{tool} not installed: PDF conversion not tested on this machine")


def test_without_soffice_the_pdf_step_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    doc = tmp_path / "a.docx"
    doc.write_bytes(b"")
    result = pdf.convert([doc])
    assert result.skipped and not result.pdfs
    assert "未生成 PDF" in result.message and "LibreOffice" in result.message


def test_nothing_to_convert():
    assert pdf.convert([]).pdfs == ()


def test_reports_convert_in_one_batch_with_embedded_cjk_fonts(tmp_path):
    _need("soffice")
    _need("pdffonts")
    ws = workspace()
    batch = county_batch(2024)
    passed = {a.code for a in batch}
    r = aggregate.rollup(batch, passed, county_batch(2023, seed=1), ws)
    docs = [render.render_agency(seed_agency(), tmp_path), render.render_county(r, ws.county, tmp_path)]

    calls = []
    real_run = subprocess.run

    def spy(cmd, *a, **kw):
        calls.append(cmd)
        return real_run(cmd, *a, **kw)

    pdf.subprocess.run = spy
    try:
        result = pdf.convert(docs)
    finally:
        pdf.subprocess.run = real_run
    assert len(calls) == 1, "one soffice call for all reports"
    assert any(str(c).startswith("-env:UserInstallation=") for c in calls[0])
    assert result.ok, result.message
    assert [p.stem for p in result.pdfs] == [d.stem for d in docs]
    for p in result.pdfs:
        out = subprocess.run(["pdffonts", str(p)], capture_output=True, text=True, check=True).stdout
        rows = [line.split() for line in out.splitlines()[2:]]
        cjk = [row for row in rows if "CJK" in row[0]]
        assert cjk, f"{p.name}: no CJK font in the PDF (fontconfig alias missing?)\n{out}"
        # name type encoding emb sub uni …: every CJK font embedded
        assert all("yes" == row[-5] for row in cjk), out
    text = subprocess.run(["pdftotext", str(result.pdfs[0]), "-"], capture_output=True, text=True, check=True).stdout
    assert "集贤县集贤镇人民政府" in text.replace(" ", "")
