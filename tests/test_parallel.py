"""Rendering many reports: the output does not depend on the number of processes (same files, same bytes, same
order). That the fast Word writer gives the bytes of a fresh docxtpl render is tests/test_fastdocx.py's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline import read, render, run, workspace

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_county"


@pytest.fixture(scope="module")
def sample():
    ws = workspace.load(SAMPLE)
    batch = read.read_batch(ws.files(2024), 2024, ws)
    return ws, batch.agency_data()


def test_jobs_do_not_change_the_reports(tmp_path, sample):
    ws, agencies = sample
    outs = {}
    for jobs in (1, 2):
        paths = render.render_agencies([(a, ws.agency(a.code)) for a in agencies], tmp_path / str(jobs), jobs=jobs)
        outs[jobs] = [(p.name, p.read_bytes()) for p in paths]
    assert [n for n, _ in outs[1]] == [render.agency_report_name(a, ws.agency(a.code)) for a in agencies]
    assert outs[1] == outs[2]


def test_run_output_is_the_same_with_one_or_two_processes(tmp_path):
    ws = workspace.load(SAMPLE)
    trees = {}
    for jobs in (1, 2):
        res = run.run(ws, 2024, tmp_path / str(jobs), jobs=jobs)
        root = res.out_dir
        trees[jobs] = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert sorted(trees[1]) == sorted(trees[2])
    assert trees[1] == trees[2]
    assert sum(1 for n in trees[1] if n.endswith(".docx")) == len(ws.agencies) + 1


def test_agencies_whose_names_make_the_same_file_name_keep_both_reports(tmp_path, sample):
    ws, agencies = sample
    a, b = agencies[0], agencies[1]
    b = dataclasses.replace(b, fields={**b.fields, "INFO_agency_name": a.text("INFO_agency_name").replace("人", "人/")})
    a = dataclasses.replace(a, fields={**a.fields, "INFO_agency_name": a.text("INFO_agency_name").replace("人", "人:")})
    for jobs in (1, 2):
        paths = render.render_agencies([(a, ws.agency(a.code)), (b, ws.agency(b.code))], tmp_path / str(jobs), jobs=jobs)
        assert len({p.name for p in paths}) == 2 and all(p.is_file() for p in paths)
        assert b.code in paths[1].name


def test_validation_in_two_processes_gives_the_same_findings(sample, monkeypatch):
    """The text checks in a second process (and 雷同 split between the two): the same findings."""
    from pipeline import validate

    ws, _ = sample
    batch = read.read_batch(ws.files(2024), 2024, ws)
    previous = read.read_batch(ws.files(2023), 2023, ws)
    t, pt = batch.texts, previous.texts
    # texts copied from another agency and from last year, a year that is not the report's, an empty field
    for name in ("TXT_overview", "TXT_problems", "TXT_other_matters"):
        rows = t.index[t["name"] == name]
        t.loc[rows[1], "value"] = t.loc[rows[0], "value"]
        prev_rows = pt.index[(pt["name"] == name) & (pt["record"] == t.loc[rows[2], "record"])]
        t.loc[rows[2], "value"] = pt.loc[prev_rows[0], "value"]
    t.loc[t.index[t["name"] == "TXT_platform"][3], "value"] = "2019年以来，平台建设取得进展。"
    t.loc[t.index[t["name"] == "TXT_management"][4], "value"] = ""
    one = validate.validate(batch, ws, previous)
    monkeypatch.setattr(validate, "PARALLEL_MIN_RECORDS", 1)
    two = validate.validate(batch, ws, previous, jobs=2)
    codes = {f.code for f in one.findings}
    assert {"TEXT_SAME_AS_OTHER", "TEXT_SAME_AS_LAST_YEAR", "TEXT_OTHER_YEAR", "TEXT_EMPTY"} <= codes
    assert [f.as_json() for f in two.findings] == [f.as_json() for f in one.findings]
    assert two.agencies == one.agencies and two.passed == one.passed
