"""Nothing lost: interrupted runs leave no partial file, re-runs give the same bytes, the manifest accounts for every
input and output, agency names never become paths outside the output folder, stale outputs are removed, inputs are
never modified.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import defects as D

from pipeline import export, lock, ooxml, render, run, spec, workspace
from pipeline.workspace import Agency

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
UNSAFE_CHARS = set('<>:"/\\|?*') | {chr(i) for i in range(32)} | {"\x7f"}


# ------------------------------------------------------------------------------------------------ helpers


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def is_temp(path: Path) -> bool:
    """The temporary name ooxml writes under before the rename: hidden, ending in .tmp — never a final name."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        try:
            if p.is_file():
                out.append(p)
        except OSError:  # renamed away while we looked
            pass
    return out


def assert_complete_file(path: Path) -> None:
    """A file under a final name is whole: zips pass their CRC check and open, JSON parses."""
    suffix = path.suffix.lower()
    if suffix in (".docx", ".xlsx"):
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None, path
        if suffix == ".docx":
            Document(path)
        else:
            load_workbook(path).close()
    elif suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    else:
        pytest.fail(f"unexpected output {path}")


def copy_sample(dest: Path) -> workspace.Workspace:
    shutil.copytree(SAMPLE, dest)
    return workspace.load(dest)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sample county run twice into the same folder (in process, one job): both snapshots and the inputs."""
    tmp = tmp_path_factory.mktemp("reference")
    ws = copy_sample(tmp / "county")
    before = hashes(ws.root)
    out = tmp / "out"
    first = run.run(ws, YEAR, out, jobs=1)
    one = snapshot(first.out_dir)
    second = run.run(ws, YEAR, out, jobs=1)
    two = snapshot(second.out_dir)
    return ws, before, first, one, two


# ------------------------------------------------------------------------------------------------ re-runs


def test_a_rerun_over_the_same_inputs_gives_byte_identical_outputs(reference):
    ws, before, first, one, two = reference
    assert first.exit_code == 0
    assert sorted(one) == sorted(two)
    for name in one:
        assert one[name] == two[name], name
    suffixes = {Path(n).suffix for n in one}
    assert {".docx", ".xlsx", ".json"} <= suffixes and "manifest.json" in one
    assert hashes(ws.root) == before  # inputs never modified


def test_outputs_are_readable_like_any_file_the_office_saves(reference):
    """Written via a temporary file (created 0600), but the final files get the usual mode (0666 minus umask)."""
    _, _, first, _, _ = reference
    umask = os.umask(0)
    os.umask(umask)
    for p in files(first.out_dir):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p.name


# ------------------------------------------------------------------------------------------------ interrupted runs


def _reports_subprocess(ws: Path, out: Path, jobs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "reports", str(ws), "--year", str(YEAR), "--output", str(out),
           "--jobs", str(jobs)]
    # its own process group: the kill reaches the worker processes too
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill_when(proc: subprocess.Popen, year_dir: Path, outputs: int, on_temp: bool) -> None:
    """SIGKILL the run once ``outputs`` files exist under their final names (or, with ``on_temp``, as soon as a
    temporary file is seen after the first output)."""
    try:
        while proc.poll() is None:
            present = files(year_dir) if year_dir.is_dir() else []
            final = [p for p in present if not is_temp(p) and p.name != lock.LOCK_FILE]
            if len(final) >= outputs or (on_temp and final and any(is_temp(p) for p in present)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize(
    "outputs,on_temp,jobs",
    [(1, False, 2), (8, True, 1)],
    ids=["after-the-first-output-2-jobs", "while-writing-a-report-1-job"],
)
def test_an_interrupted_run_leaves_no_partial_file_and_the_next_run_recovers(
        tmp_path, reference, outputs, on_temp, jobs):
    _, _, _, one, _ = reference
    ws = copy_sample(tmp_path / "county")
    before = hashes(ws.root)
    out = tmp_path / "out"
    year_dir = out / str(YEAR)

    proc = _reports_subprocess(ws.root, out, jobs)
    _kill_when(proc, year_dir, outputs, on_temp)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"

    left = files(year_dir)
    assert any(not is_temp(p) for p in left)
    for p in left:
        if p.name == lock.LOCK_FILE:  # the killed run's lock (whose flock died with it): the next run takes it over
            continue
        if not is_temp(p):  # every file under a final name is whole
            assert_complete_file(p)
    manifest = year_dir / run.MANIFEST
    if manifest.exists():  # a manifest left behind either says the run did not finish or is true
        m = json.loads(manifest.read_text(encoding="utf-8"))
        if m.get("complete"):
            assert all((year_dir / o["file"]).is_file() for o in m["outputs"])

    again = run.run(workspace.load(ws.root), YEAR, out, jobs=1)
    assert again.exit_code == 0
    assert not [p.name for p in files(year_dir) if is_temp(p)], "temporary files of the killed run were left"
    assert snapshot(year_dir) == one  # the same bytes as an uninterrupted run
    assert hashes(ws.root) == before


def test_an_interrupted_write_leaves_the_previous_file_and_only_a_temporary_one(tmp_path, monkeypatch):
    """In process: a write that fails half way keeps the old file under the final name and removes its temp."""
    target = tmp_path / "报告.docx"
    ooxml.atomic_write_bytes(target, b"old")

    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        ooxml.atomic_write_bytes(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ------------------------------------------------------------------------------------------------ manifest


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A county with a valid agency, a failing one, one that sent only a broken file, and files that are not
    workbooks; run once."""
    root = tmp_path_factory.mktemp("mixed") / "county"
    agencies = (*D.AGENCIES, Agency("T-003", "测试县教育局", "县直部门"))
    D.write_workspace(root, agencies=agencies, files=False)
    year_dir = root / str(YEAR)
    D.write_valid(year_dir / "财政局.xlsx", agencies[0], YEAR, D.figures(0))
    broken = D.figures(1)
    broken[spec.cell_name("三", "carried_over", "natural")] += 1  # R1
    D.write_valid(year_dir / "青山镇.xlsx", agencies[1], YEAR, broken)
    (year_dir / f"{agencies[2].name}.xlsx").write_bytes(b"")  # rejected, attributed by its name
    (year_dir / "~$财政局.xlsx").write_bytes(b"lock")
    (year_dir / "说明.txt").write_text("报表已收齐", encoding="utf-8")
    (year_dir / "补报").mkdir()
    shutil.copy(year_dir / "财政局.xlsx", year_dir / "补报" / "财政局（重复）.xlsx")  # a duplicate in a sub-folder
    ws = workspace.load(root)
    before = hashes(root)
    result = run.run(ws, YEAR, root.parent / "out", jobs=1)
    return ws, before, result


def test_the_manifest_lists_every_input_with_its_hash_and_verdict(mixed):
    ws, before, result = mixed
    m = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert m["complete"] is True and m["year"] == YEAR
    year_dir = ws.year_dir(YEAR)
    on_disk = sorted(p.relative_to(year_dir).as_posix() for p in year_dir.rglob("*") if p.is_file())
    listed = [i["file"] for i in m["inputs"]]
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    by_file = {i["file"]: i for i in m["inputs"]}
    for name, item in by_file.items():
        assert item["sha256"] == sha(year_dir / name), name
        assert item["status"] in ("read", "rejected", "ignored") and item["reason"]
    assert by_file["财政局.xlsx"]["verdict"] == "有错误"  # sent twice (AGENCY_DUPLICATE)
    assert by_file["补报/财政局（重复）.xlsx"]["verdict"] == "有错误"
    assert by_file["青山镇.xlsx"]["verdict"] == "有错误"
    broken = by_file["测试县教育局.xlsx"]
    assert broken["status"] == "rejected" and broken["agency"] == "T-003" and broken["verdict"] == "有错误"
    for name in ("~$财政局.xlsx", "说明.txt"):
        assert by_file[name]["status"] == "ignored" and by_file[name]["verdict"] is None
    assert hashes(ws.root) == before


def test_the_manifest_lists_every_output_written_and_only_those(mixed):
    _, _, result = mixed
    out = result.out_dir
    m = json.loads(result.manifest.read_text(encoding="utf-8"))
    listed = {o["file"]: o["sha256"] for o in m["outputs"]}
    written = {p.relative_to(out).as_posix() for p in files(out)} - {run.MANIFEST}
    assert set(listed) == written
    for name, digest in listed.items():
        assert sha(out / name) == digest, name
    assert any(n.startswith(export.RETURN_DIR + "/") for n in listed)


# ------------------------------------------------------------------------------------------------ names


HOSTILE_ROSTER = (
    Agency("X-1", "../../越界局", "县直部门"),
    Agency("X-2", 'a<b>c:d"e|f?g*h\\i', "县直部门"),
    Agency("X-3", "CON", "乡镇（街道）"),
    Agency("X-4", "..", "乡镇（街道）"),
    Agency("X-5", "正常局", "县直部门"),
    Agency("X-6", "../正常局", "县直部门"),
    Agency("X-7", "第七局", "县直部门"),
)
#: Workbooks that name themselves differently: (roster code or unknown code, name typed in the workbook)
HOSTILE_WORKBOOKS = (
    ("X-5", "长" * 300),  # matched by code: a warning, and its report is titled with this name
    ("X-7", "CON"),  # X-3's name: two reports with the same title must not overwrite each other
    ("../..", "../.."),  # not on the roster: returned, named after the workbook
    ("NUL", "AUX"),
    ("/etc/passwd", "/etc/passwd"),
    ("Y-1", "外" * 300),
)


def _write_roster(root: Path, roster) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name", "category"])
    for a in roster:
        w.writerow([a.code, a.name, a.category])
    (root / "agencies.csv").write_text(buf.getvalue(), encoding="utf-8")


def test_agency_names_never_become_paths_outside_the_output_folder(tmp_path):
    root = tmp_path / "county"
    D.write_workspace(root, agencies=D.AGENCIES, files=False)
    _write_roster(root, HOSTILE_ROSTER)
    year_dir = root / str(YEAR)
    named = {a.code: a for a in HOSTILE_ROSTER}
    for code, name in HOSTILE_WORKBOOKS:
        named[code] = Agency(code, name, "县直部门")
    for i, a in enumerate(named.values()):
        D.write_valid(year_dir / f"报表{i:02d}.xlsx", a, YEAR, D.figures(i))
    ws = workspace.load(root)
    assert [a.name for a in ws.agencies] == [a.name for a in HOSTILE_ROSTER]
    before = snapshot(tmp_path)

    result = run.run(ws, YEAR, tmp_path / "out", jobs=1)
    assert result.exit_code == 1  # the agencies not on the roster

    after = snapshot(tmp_path)
    new = [name for name in after if name not in before]
    assert {name: after[name] for name in before} == before  # nothing outside the output changed
    out = (tmp_path / "out" / str(YEAR)).resolve()
    for name in new:
        path = (tmp_path / name).resolve()
        assert path.is_relative_to(out), name
        for part in path.relative_to(out).parts:
            assert not part.startswith((".", " ")) and not part.endswith((".", " ")), part
            assert not set(part) & UNSAFE_CHARS, part
            assert part.split(".")[0].strip().upper() not in WINDOWS_RESERVED, part
            assert len(part.encode("utf-8")) <= 255, part
        assert_complete_file(path)
    reports = [n for n in new if n.endswith(".docx")]
    # every roster agency passed but X-5 and X-7, whose workbooks carry a name that is not theirs (X-7 X-3's
    # name, X-5 a name of no agency): given to no agency (AGENCY_CONFLICT); and the county summary
    assert len(reports) == len(HOSTILE_ROSTER) - 2 + 1
    m = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert {o["file"] for o in m["outputs"]} | {run.MANIFEST} == {
        (tmp_path / n).resolve().relative_to(out).as_posix() for n in new}


def test_report_file_names_are_capped_and_keep_their_tail():
    name = render.agency_filename("长" * 300, YEAR)
    assert len(name.encode("utf-8")) <= 255 and name.endswith(f"{YEAR}{spec.REPORT_TITLE_SUFFIX}.docx")
    county = render.county_filename("县" * 300, YEAR)
    assert len(county.encode("utf-8")) <= 255 and county.endswith(".docx")


# ------------------------------------------------------------------------------------------------ stale outputs


def test_a_rerun_removes_what_the_previous_run_wrote_and_this_one_does_not(tmp_path):
    root = D.write_workspace(tmp_path / "county")
    ws = workspace.load(root)
    out = tmp_path / "out"
    year_out = out / str(YEAR)
    prefilled = run.write_prefilled_templates(ws, YEAR, out).paths  # not outputs of `reports`: never removed
    year_out.mkdir(parents=True, exist_ok=True)
    note = year_out / "县政务公开办备注.txt"
    note.write_text("不要删除", encoding="utf-8")
    a, b = D.AGENCIES

    def report(agency) -> Path:
        return year_out / render.agency_filename(agency.name, YEAR)

    def listed() -> set[str]:
        return {o["file"] for o in json.loads((year_out / run.MANIFEST).read_text(encoding="utf-8"))["outputs"]}

    assert run.run(ws, YEAR, out, jobs=1).exit_code == 0
    assert report(a).is_file() and report(b).is_file()

    # b drops out: its report goes, a's stays
    b_book = next(p for p in ws.year_dir(YEAR).iterdir() if b.name in p.name)
    b_bytes = b_book.read_bytes()
    b_book.unlink()
    assert run.run(ws, YEAR, out, jobs=1).exit_code == 1
    assert report(a).is_file() and not report(b).exists()
    assert report(b).name not in listed()

    # b is back, a now fails: a's report goes, its returned copy appears
    b_book.write_bytes(b_bytes)
    a_book = next(p for p in ws.year_dir(YEAR).iterdir() if a.name in p.name)
    a_bytes = a_book.read_bytes()
    broken = D.figures(0)
    broken[spec.cell_name("三", "carried_over", "natural")] += 1
    D.write_valid(a_book, a, YEAR, broken)
    assert run.run(ws, YEAR, out, jobs=1).exit_code == 1
    returned = year_out / export.RETURN_DIR / f"{a.name}_{YEAR}年度_退回修改.xlsx"
    assert not report(a).exists() and report(b).is_file() and returned.is_file()

    # a fixed: the returned copy, now obsolete, goes
    a_book.write_bytes(a_bytes)
    assert run.run(ws, YEAR, out, jobs=1).exit_code == 0
    assert report(a).is_file() and report(b).is_file() and not returned.exists()
    assert {p.relative_to(year_out).as_posix() for p in files(year_out)} - {run.MANIFEST} == listed() | {
        note.name} | {p.relative_to(year_out).as_posix() for p in prefilled}
    assert note.read_text(encoding="utf-8") == "不要删除" and all(p.is_file() for p in prefilled)


def test_a_manifest_naming_files_outside_the_output_folder_removes_nothing_there(tmp_path):
    root = D.write_workspace(tmp_path / "county")
    ws = workspace.load(root)
    out = tmp_path / "out"
    victim = tmp_path / "victim.docx"
    victim.write_bytes(b"keep")
    year_out = out / str(YEAR)
    year_out.mkdir(parents=True)
    forged = {"outputs": [{"file": "../../victim.docx"}, {"file": str(victim)}, {"file": "."}]}
    (year_out / run.MANIFEST).write_text(json.dumps(forged), encoding="utf-8")
    run.run(ws, YEAR, out, jobs=1)
    assert victim.read_bytes() == b"keep"
