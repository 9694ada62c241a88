"""The fast Word writer (pipeline/fastdocx.py): it runs only under the library versions it was written for, gives
exactly plain docxtpl's bytes, and falls back to plain docxtpl — the same bytes — whenever something does not hold.

The first tests are the canary: they fail when docxtpl or python-docx is upgraded (or downgraded) underneath the
fast path, which reaches into their internals. Then: read what changed in fastdocx.REACHED_INTO, run this file
and tests/test_parallel.py, and update fastdocx.PINS and pyproject.toml together.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from test_render_data import seed_agency

from pipeline import fastdocx, ooxml, read, render, workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"


@pytest.fixture(scope="module")
def sample():
    ws = workspace.load(SAMPLE)
    batch = read.read_batch(ws.files(2024), 2024, ws)
    return ws, batch.agency_data()


def context(a, roster) -> dict:
    """An agency report's context as render_agency hands it to fastdocx."""
    return {k: render._plain(v) for k, v in render.agency_context(a, roster).as_dict().items()}


def reference(a, roster, path: Path) -> bytes:
    """What a fresh DocxTemplate per report writes (render.fill, the county summary's path)."""
    return render.fill(render.AGENCY_TEMPLATE, render.agency_context(a, roster).as_dict(), path).read_bytes()


@pytest.fixture
def fresh(monkeypatch):
    """fastdocx as in a new process: nothing prepared, the libraries not yet checked."""
    monkeypatch.setattr(fastdocx, "_PREPARED", {})
    fastdocx.problems.cache_clear()
    yield
    fastdocx.problems.cache_clear()


# ---- the canary


@pytest.mark.parametrize("dist", sorted(fastdocx.PINS))
def test_the_pinned_version_is_installed(dist):
    installed = metadata.version(dist)
    assert installed == fastdocx.PINS[dist], (
        f"{dist} {installed} is installed but pipeline/fastdocx.py reaches into {dist} {fastdocx.PINS[dist]}'s "
        f"internals: every agency report now goes through plain docxtpl (~15x slower). Read what changed in "
        f"fastdocx.REACHED_INTO, run tests/test_fastdocx.py and tests/test_parallel.py, then update fastdocx.PINS "
        f"and pyproject.toml.")


def test_pyproject_pins_exactly_those_versions():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for dist, pin in fastdocx.PINS.items():
        assert f"{dist}=={pin}" in deps, f"pyproject.toml must pin {dist}=={pin} (fastdocx.PINS)"


def test_no_problems_with_the_installed_libraries(fresh):
    assert fastdocx.problems() == ()
    assert fastdocx.prepare(render.AGENCY_TEMPLATE) is not None


def test_problems_name_a_version_or_an_internal_that_changed(fresh, monkeypatch):
    monkeypatch.setitem(fastdocx.PINS, "docxtpl", "0.0.1")
    monkeypatch.setattr(fastdocx, "REACHED_INTO", fastdocx.REACHED_INTO + (
        ("docxtpl.template", "DocxTemplate.no_such_method", None),
        ("docxtpl.template", "DocxTemplate.patch_xml", "(self, xml, extra)"),
    ))
    found = fastdocx.problems()
    assert len(found) == 3
    assert "docxtpl 0.20.2" in found[0] and "0.0.1" in found[0]
    assert "no_such_method is missing" in found[1]
    assert "(self, src_xml)" in found[2] and "(self, xml, extra)" in found[2]


# ---- the same bytes as plain docxtpl


def test_the_prepared_template_gives_the_bytes_of_a_fresh_render(tmp_path, sample):
    ws, agencies = sample
    hostile = dataclasses.replace(
        seed_agency(),
        fields={**seed_agency().fields, "TXT_overview": "A & B <c> \"d\" 'e'\x07\ud800 ＆\n第二段\t制表",
                "TXT_problems": "{{ v }} {% if %} ]]> <w:t>"},
    )
    fast = fastdocx.prepare(render.AGENCY_TEMPLATE)
    for a in [*agencies, hostile, agencies[0]]:
        roster = ws.agency(a.code)
        want = reference(a, roster, tmp_path / "ref" / "x.docx")
        assert fast.render(context(a, roster)) == want, a.code  # the fast path itself, unchecked
        assert render.render_agency(a, tmp_path / "fast", roster).read_bytes() == want, a.code
        assert fastdocx.plain(render.AGENCY_TEMPLATE, context(a, roster)) == want, a.code
    assert not fast.broken


def test_a_body_moved_into_the_document_gives_the_same_bytes(sample, monkeypatch):
    """The general path (docxtpl's: the body moved into the document) and the shortcut agree."""
    ws, agencies = sample
    tpl = fastdocx.prepare(render.AGENCY_TEMPLATE)
    fast = [tpl.render(context(a, ws.agency(a.code))) for a in agencies[:3]]
    monkeypatch.setattr(tpl, "body_alone", False)
    slow = [tpl.render(context(a, ws.agency(a.code))) for a in agencies[:3]]
    assert fast == slow


def test_zip_of_the_prepared_template_matches_normalise_zip(sample):
    """The deflate streams kept from the last report give exactly the archive ooxml.normalise_zip writes."""
    ws, agencies = sample
    tpl = fastdocx.prepare(render.AGENCY_TEMPLATE)
    data = tpl.render(context(agencies[0], ws.agency(agencies[0].code)))
    again = tpl.render(context(agencies[0], ws.agency(agencies[0].code)))
    assert data == again == ooxml.normalise_zip(data)


MEMBERS = [("[Content_Types].xml", b"<Types/>" * 300), ("word/document.xml", "正文".encode() * 5000),
           ("docProps/empty.xml", b""), ("word/media/图一.png", bytes(range(256)) * 64), ("a/b.xml", b"x")]


def test_zip_members_writes_the_bytes_zipfile_writes():
    assert ooxml.zip_layout_problem() == ""
    via_zipfile = ooxml._zipfile_members(MEMBERS)
    cache: dict = {}
    assert ooxml.zip_members(MEMBERS, cache) == via_zipfile == ooxml.normalise_zip(via_zipfile)
    assert set(cache) == {name for name, _ in MEMBERS}
    # again, every stream from the cache; then one member changed under the same name
    assert ooxml.zip_members([(n, bytes(b)) for n, b in MEMBERS], cache) == via_zipfile
    changed = [*MEMBERS[:1], ("word/document.xml", "改动".encode() * 5000), *MEMBERS[2:]]
    assert ooxml.zip_members(changed, cache) == ooxml._zipfile_members(changed)
    with zipfile.ZipFile(io.BytesIO(ooxml.zip_members(changed, cache))) as z:
        assert z.testzip() is None and z.read("word/document.xml") == "改动".encode() * 5000
    assert ooxml.zip_members([]) == ooxml._zipfile_members([])


def test_zip_members_leaves_to_zipfile_what_it_does_not_write(monkeypatch):
    """A name zipfile would change, or a layout that differs from zipfile's on this interpreter: zipfile writes."""
    odd = [("a\0b.xml", b"x"), *MEMBERS]
    assert ooxml._struct_members(odd, None) is None
    assert ooxml.zip_members(odd) == ooxml._zipfile_members(odd)
    monkeypatch.setattr(ooxml, "_CREATE_SYSTEM", 0 if ooxml._CREATE_SYSTEM else 3)
    ooxml.zip_layout_problem.cache_clear()
    try:
        assert ooxml.zip_layout_problem() != ""
        assert ooxml.zip_members(MEMBERS, {}) == ooxml._zipfile_members(MEMBERS)
    finally:
        monkeypatch.undo()
        ooxml.zip_layout_problem.cache_clear()
    assert ooxml.zip_layout_problem() == ""


# ---- falling back to plain docxtpl


def test_another_library_version_renders_with_plain_docxtpl(fresh, monkeypatch, tmp_path, sample):
    ws, agencies = sample
    monkeypatch.setitem(fastdocx.PINS, "python-docx", "9.9.9")
    assert fastdocx.prepare(render.AGENCY_TEMPLATE) is None
    a = agencies[1]
    got = render.render_agency(a, tmp_path / "out", ws.agency(a.code)).read_bytes()
    assert got == reference(a, ws.agency(a.code), tmp_path / "ref.docx")
    assert fastdocx._PREPARED == {}  # never loaded


def test_the_first_report_of_a_process_is_checked_against_plain_docxtpl(fresh, monkeypatch, sample):
    ws, agencies = sample
    calls = []
    real = fastdocx.plain
    monkeypatch.setattr(fastdocx, "plain", lambda t, c: calls.append(c) or real(t, c))
    outs = [fastdocx.fill(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code))) for a in agencies[:4]]
    assert len(calls) == 1  # the first only
    assert outs == [real(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code))) for a in agencies[:4]]
    assert fastdocx.prepare(render.AGENCY_TEMPLATE).verified


def test_fast_bytes_that_differ_switch_the_process_to_plain_docxtpl(fresh, monkeypatch, sample, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.fastdocx")
    ws, agencies = sample
    monkeypatch.setattr(fastdocx.Prepared, "render", lambda self, ctx: b"PK not quite")
    outs = [fastdocx.fill(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code))) for a in agencies[:3]]
    assert outs == [fastdocx.plain(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code))) for a in agencies[:3]]
    assert fastdocx.prepare(render.AGENCY_TEMPLATE) is None
    assert "differ from plain docxtpl" in caplog.text


def test_an_error_only_the_fast_path_has_switches_to_plain_docxtpl(fresh, monkeypatch, sample):
    ws, agencies = sample

    def boom(self, ctx):
        raise KeyError("internals moved")

    monkeypatch.setattr(fastdocx.Prepared, "render", boom)
    a = agencies[0]
    got = fastdocx.fill(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code)))
    assert got == fastdocx.plain(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code)))
    assert fastdocx.prepare(render.AGENCY_TEMPLATE) is None


def test_a_template_the_fast_path_cannot_take_apart_is_rendered_by_plain_docxtpl(fresh, monkeypatch, sample):
    ws, agencies = sample

    def unknown(self, template):
        raise ValueError("no <w:body")

    monkeypatch.setattr(fastdocx.Prepared, "__init__", unknown)
    assert fastdocx.prepare(render.AGENCY_TEMPLATE) is None
    a = agencies[2]
    got = fastdocx.fill(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code)))
    assert got == fastdocx.plain(render.AGENCY_TEMPLATE, context(a, ws.agency(a.code)))
    assert list(fastdocx._PREPARED.values()) == ["ValueError: no <w:body"]  # tried once


def test_an_error_plain_docxtpl_shares_is_raised_and_the_fast_path_kept(fresh):
    from jinja2.exceptions import UndefinedError

    with pytest.raises(UndefinedError):
        fastdocx.fill(render.AGENCY_TEMPLATE, {})  # no figures: the template cannot be filled by either
    fast = fastdocx.prepare(render.AGENCY_TEMPLATE)
    assert fast is not None and not fast.broken and not fast.verified
