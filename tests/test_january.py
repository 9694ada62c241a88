"""The January run meets the office's file system: unreadable files and folders, links, an output folder inside the
workspace, two runs at once, a full or read-only disk, paths with spaces and Chinese characters (issue 10).

Unreadable files are simulated in this process (root reads anything: chmod 000 does not stop it) and, where
possible, made real for a run as an unprivileged user (``setpriv`` as root, chmod as anyone else).
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures import defects as D
from pipeline import lock, ooxml, read, run, workspace
from pipeline.cli import app
from pipeline.workspace import Agency

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
CI = os.environ.get("CI") == "true"
runner = CliRunner()


def _skip(reason: str) -> None:
    if CI:
        pytest.fail(f"must run under CI: {reason}")
    pytest.skip(reason)


def _manifest(out: Path) -> dict:
    return json.loads((out / str(YEAR) / run.MANIFEST).read_text(encoding="utf-8"))


def _by_file(entries: list[dict]) -> dict[str, dict]:
    return {e["file"]: e for e in entries}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _temps(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ooxml.is_temp_name(p.name)]


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result, " ".join(result.output.split())  # the message without the terminal's line breaks


def _deny(monkeypatch, *denied: Path) -> None:
    """Opening ``denied`` paths fails with EACCES in this process (as for a file the account may not read)."""
    denied_set = {str(p) for p in denied}
    real_open, real_scandir, real_read_text = builtins.open, os.scandir, Path.read_text

    def check(path) -> None:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) in denied_set:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def fake_open(file, *a, **kw):
        check(file)
        return real_open(file, *a, **kw)

    def fake_scandir(path=".", *a, **kw):
        check(path)
        return real_scandir(path, *a, **kw)

    def fake_read_text(self, *a, **kw):
        check(self)
        return real_read_text(self, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    monkeypatch.setattr(Path, "read_text", fake_read_text)


# ------------------------------------------------------------------------------------------ unreadable files


def test_an_unreadable_workbook_is_rejected_as_unreadable_and_the_run_goes_on(tmp_path, monkeypatch):
    root = D.write_workspace(tmp_path / "county")
    denied = next((root / str(YEAR)).glob(f"{D.AGENCIES[1].name}*.xlsx"))
    _deny(monkeypatch, denied)
    out = tmp_path / "out"
    result, text = _invoke("reports", str(root), "--year", str(YEAR), "--output", str(out), "-j", "1")
    assert result.exit_code == 1, result.output  # a finding, not "程序内部错误"
    m = _manifest(out)
    assert m["complete"] is True
    entry = _by_file(m["inputs"])[denied.name]
    assert entry["status"] == "rejected" and entry["codes"] == ["FILE_UNREADABLE"]
    assert "无法读取（权限）" in entry["reason"] and "损坏" not in entry["reason"].split("：")[0]
    assert entry["sha256"] == "" and entry["agency"] == D.AGENCIES[1].code and entry["verdict"] == "有错误"
    findings = json.loads((out / str(YEAR) / "校验结果.json").read_text(encoding="utf-8"))
    assert [f["code"] for f in findings if f["file"] == denied.name] == ["FILE_UNREADABLE"]
    other = _by_file(m["inputs"])[next((root / str(YEAR)).glob(f"{D.AGENCIES[0].name}*.xlsx")).name]
    assert other["status"] == "read" and other["verdict"] == "通过" and len(other["sha256"]) == 64
    assert (out / str(YEAR) / f"{D.AGENCIES[0].name}{YEAR}年政府信息公开工作年度报告.docx").is_file()
    assert "通过 1，未报送 0" in text  # the agency is not reported as not having sent its workbook


@pytest.mark.parametrize("name,what", [("agencies.csv", "单位名册"), ("county.toml", "县信息文件")])
def test_an_unreadable_roster_or_county_file_is_a_usage_error_naming_it(tmp_path, monkeypatch, name, what):
    root = D.write_workspace(tmp_path / "county")
    _deny(monkeypatch, root / name)
    result, text = _invoke("validate", str(root), "--year", str(YEAR), "--output", str(tmp_path / "out"), "-j", "1")
    assert result.exit_code == 2, result.output
    assert f"无法读取{what} {root / name}（权限）" in text and "程序内部错误" not in text
    assert not (tmp_path / "out").exists()


def _probe_unprivileged(base: Path) -> list[str]:
    """The command prefix that runs as another, unprivileged account (root: setpriv to nobody)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        _skip("setpriv is missing: cannot run as an unprivileged user")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import pipeline.run"], cwd=base,
                           capture_output=True, env=_env(base))
    if probe.returncode != 0:
        _skip(f"the unprivileged user cannot run this checkout's Python: {probe.stderr.decode()[-200:]}")
    return prefix


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


@pytest.fixture
def open_tmp():
    """A folder every account may use (tmp_path is private to its owner), cleaned up with its permissions back."""
    base = Path(tempfile.mkdtemp(prefix="nianbao-perm-"))
    base.chmod(0o777)
    yield base
    for p in [base, *base.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o777)
    shutil.rmtree(base)


def test_real_permissions_an_unreadable_workbook_folder_and_roster(open_tmp):
    base = open_tmp
    prefix = _probe_unprivileged(base)
    root = D.write_workspace(base / "county")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    year_dir = root / str(YEAR)
    denied = next(year_dir.glob(f"{D.AGENCIES[1].name}*.xlsx"))
    sub = year_dir / f"{D.AGENCIES[0].name}补报"
    sub.mkdir()
    D.write_valid(sub / "补报.xlsx")
    denied.chmod(0)
    sub.chmod(0)
    out = base / "out"
    cmd = [*prefix, sys.executable, "-m", "pipeline.cli", "validate", str(root), "--year", str(YEAR), "--output",
           str(out), "-j", "1"]
    proc = subprocess.run(cmd, cwd=base, capture_output=True, env=_env(base), timeout=300)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, err
    m = _manifest(out)
    inputs = _by_file(m["inputs"])
    assert inputs[denied.name]["codes"] == ["FILE_UNREADABLE"] and "无法读取（权限）" in inputs[denied.name]["reason"]
    assert inputs[sub.name]["status"] == "rejected" and inputs[sub.name]["codes"] == ["FILE_UNREADABLE"]
    assert inputs[sub.name]["reason"].startswith("文件夹无法读取（权限）")
    assert inputs[sub.name]["agency"] == D.AGENCIES[0].code
    (root / "agencies.csv").chmod(0)
    proc = subprocess.run(cmd, cwd=base, capture_output=True, env=_env(base), timeout=300)
    err = " ".join(proc.stderr.decode("utf-8", "replace").split())
    assert proc.returncode == 2 and f"无法读取单位名册 {root / 'agencies.csv'}（权限）" in err, err


# ------------------------------------------------------------------------------------------ every entry


def test_every_entry_of_the_year_folders_gets_a_verdict(tmp_path, monkeypatch):
    agencies = (*D.AGENCIES, Agency("T-003", "测试县教育局", "县直部门"), Agency("T-004", "测试县水利局", "县直部门"),
                Agency("T-005", "测试县交通局", "县直部门"))
    root = D.write_workspace(tmp_path / "county", agencies=agencies[:2])
    D.write_workspace(root, agencies=agencies, files=False)  # the longer roster, same workbooks
    year_dir, last_dir = root / str(YEAR), root / str(YEAR - 1)
    last_dir.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    D.write_valid(outside / "外部.xlsx", agencies[2])
    (year_dir / f"{agencies[2].name}.xlsx").symlink_to(outside / "外部.xlsx")  # out of the workspace
    (year_dir / f"{agencies[3].name}.xlsx").symlink_to(year_dir / "不存在.xlsx")  # broken
    (year_dir / "循环甲.xlsx").symlink_to(year_dir / "循环乙.xlsx")
    (year_dir / "循环乙.xlsx").symlink_to(year_dir / "循环甲.xlsx")
    (year_dir / f"{agencies[4].name}文件夹").symlink_to(outside, target_is_directory=True)
    (last_dir / "上年链接").symlink_to(outside, target_is_directory=True)
    (year_dir / "说明.txt").symlink_to("/etc/hostname")
    unreadable = year_dir / "补报（无权限）"
    unreadable.mkdir()
    D.write_valid(unreadable / "补报.xlsx", agencies[0])
    os.mkfifo(year_dir / "管道.xlsx")
    archive = root / "存档"
    archive.mkdir()
    shutil.move(next(year_dir.glob(f"{agencies[1].name}*.xlsx")), archive / "青山镇.xlsx")
    (year_dir / "青山镇（链接）.xlsx").symlink_to(Path("..") / "存档" / "青山镇.xlsx")  # inside: read
    _deny(monkeypatch, unreadable)

    out = tmp_path / "out"
    result = run.run(workspace.load(root), YEAR, out, render=False, jobs=1)
    assert result.exit_code == 1
    m = _manifest(out)
    inputs = _by_file(m["inputs"])
    assert sorted(inputs) == sorted([f"{agencies[0].name}{YEAR}年报.xlsx", f"{agencies[2].name}.xlsx",
                                     f"{agencies[3].name}.xlsx", "循环甲.xlsx", "循环乙.xlsx",
                                     f"{agencies[4].name}文件夹", "说明.txt", "补报（无权限）", "管道.xlsx",
                                     "青山镇（链接）.xlsx"])

    def check(name, status, code=None, agency=None, reason=None, sha=False):
        e = inputs[name]
        assert e["status"] == status, e
        assert e["codes"] == ([code] if code else []), e
        assert reason is None or reason in e["reason"], e
        assert (len(e["sha256"]) == 64) if sha else e["sha256"] == "", e
        if agency is not None:
            assert e["agency"] == agency.code and e["verdict"] == "有错误", e

    check(f"{agencies[2].name}.xlsx", "rejected", "FILE_LINK", agencies[2], "指向工作目录以外的符号链接")
    check(f"{agencies[3].name}.xlsx", "rejected", "FILE_LINK", agencies[3], "指向不存在的文件的符号链接")
    check("循环甲.xlsx", "rejected", "FILE_LINK", reason="循环的符号链接")
    check("循环乙.xlsx", "rejected", "FILE_LINK", reason="循环的符号链接")
    check(f"{agencies[4].name}文件夹", "rejected", "FILE_LINK", agencies[4], "指向文件夹的符号链接")
    check("说明.txt", "ignored", reason="未跟随")
    check("补报（无权限）", "rejected", "FILE_UNREADABLE", reason="文件夹无法读取（权限）")
    check("管道.xlsx", "ignored", reason="不是普通文件")
    check("青山镇（链接）.xlsx", "read", sha=True)
    assert inputs["青山镇（链接）.xlsx"]["agency"] == agencies[1].code
    assert inputs["青山镇（链接）.xlsx"]["verdict"] == "通过"
    check(f"{agencies[0].name}{YEAR}年报.xlsx", "read", sha=True)
    # last year's folder too
    (prev,) = m["previous_year_inputs"]
    assert prev["file"] == "上年链接" and prev["status"] == "rejected" and prev["codes"] == ["FILE_LINK"]
    # nobody whose file sits there is reported as not having sent one
    report = json.loads((out / str(YEAR) / "校验结果.json").read_text(encoding="utf-8"))
    missing = {f["agency"] for f in report if f["code"] == "AGENCY_MISSING"}
    assert missing == set(), missing


def test_an_unreadable_year_folder_is_a_usage_error(tmp_path, monkeypatch):
    root = D.write_workspace(tmp_path / "county")
    _deny(monkeypatch, root / str(YEAR))
    result, text = _invoke("validate", str(root), "--year", str(YEAR), "--output", str(tmp_path / "out"), "-j", "1")
    assert result.exit_code == 2, result.output
    assert f"无法打开文件夹 {root / str(YEAR)}（权限）" in text


# ------------------------------------------------------------------------------------------ output folder


@pytest.mark.parametrize("command", ["reports", "validate"])
@pytest.mark.parametrize("where", ["workspace", "year", "last-year", "cwd"])
def test_an_output_folder_in_the_workspace_year_folders_is_refused(tmp_path, monkeypatch, command, where):
    root = tmp_path / "county"
    shutil.copytree(SAMPLE, root)
    before = _tree(root)
    output = {"workspace": str(root), "year": str(root / str(YEAR)), "last-year": str(root / str(YEAR - 1)),
              "cwd": "."}[where]
    ws_arg = "." if where == "cwd" else str(root)
    monkeypatch.chdir(root)
    result, text = _invoke(command, ws_arg, "--year", str(YEAR), "--output", output, "-j", "1")
    assert result.exit_code == 2, result.output
    assert "重叠" in text and "--output" in text and "程序内部错误" not in text
    assert _tree(root) == before and not (root / str(YEAR) / str(YEAR)).exists()


def test_template_into_the_workspace_is_refused_and_an_output_beside_the_year_folders_works(tmp_path):
    root = tmp_path / "county"
    shutil.copytree(SAMPLE, root)
    before = _tree(root)
    for args in (["template", str(root), "--output", str(root)],  # 2025: the folder the next run reads
                 ["template", str(root), "--year", str(YEAR), "--output", str(root)]):
        result, text = _invoke(*args)
        assert result.exit_code == 2, result.output
        assert "重叠" in text and run.PREFILLED_DIR in text
    assert not (root / "2025").exists() and _tree(root) == before
    # the clerk's next try, as the message suggests: <workspace>/output
    result, _ = _invoke("template", str(root), "--output", str(root / "output"))
    assert result.exit_code == 0, result.output
    assert len(list((root / "output" / "2025" / run.PREFILLED_DIR).glob("*.xlsx"))) == 12
    result, _ = _invoke("validate", str(root), "--year", str(YEAR), "--output", str(root / "output"), "-j", "1")
    assert result.exit_code == 0, result.output
    assert [i["status"] for i in _manifest(root / "output")["inputs"]] == ["read"] * 12


# ------------------------------------------------------------------------------------------ one run at a time


_HOLDER = """
import sys, time
from pathlib import Path
from pipeline import lock
with lock.hold(Path(sys.argv[1]), "reports"):
    print("ready", flush=True)
    time.sleep(300)
"""


def test_a_second_run_into_a_busy_output_folder_exits_2_and_a_dead_runs_lock_is_taken_over(tmp_path):
    out = tmp_path / "out"
    year_dir = out / str(YEAR)
    year_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(year_dir)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        for args in (["validate", str(SAMPLE), "--year", str(YEAR)], ["template", str(SAMPLE), "--year", str(YEAR)]):
            result, text = _invoke(*args, "--output", str(out))
            assert result.exit_code == 2, result.output
            assert "另一个 nianbao 正在" in text and f"进程 {holder.pid}" in text and "请等它结束后再运行" in text
        assert sorted(p.name for p in year_dir.iterdir()) == [lock.LOCK_FILE]  # nothing written beside it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    stale = json.loads((year_dir / lock.LOCK_FILE).read_text(encoding="utf-8"))
    assert stale["pid"] == holder.pid  # left by the killed run
    result, _ = _invoke("validate", str(SAMPLE), "--year", str(YEAR), "--output", str(out), "-j", "1")
    assert result.exit_code == 0, result.output
    assert not (year_dir / lock.LOCK_FILE).exists()
    assert lock.LOCK_FILE not in {o["file"] for o in _manifest(out)["outputs"]}


def test_the_lock_without_flock_takes_over_a_dead_process_and_refuses_a_live_one(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "fcntl", None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / lock.LOCK_FILE
    import socket

    path.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}), encoding="utf-8")
    with lock.hold(tmp_path, "reports"):
        held = json.loads(path.read_text(encoding="utf-8"))
        assert held["pid"] == os.getpid() and held["command"] == "reports"
        with pytest.raises(lock.OutputBusy, match=f"进程 {os.getpid()}"):
            with lock.hold(tmp_path, "validate"):
                pass
    assert not path.exists()


def test_the_lock_file_is_hidden_from_readers():
    assert read.ignore_reason(Path(lock.LOCK_FILE)) == "隐藏文件或临时文件"


# ------------------------------------------------------------------------------------------ full, read-only disk


def test_a_full_disk_exits_2_naming_the_file_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    """The disk fills up while the first agency report is written (its temporary file half written)."""
    out = tmp_path / "out"
    writing: list[Path] = []
    real_write, real_fsync = ooxml._atomic_write, os.fsync

    def atomic_write(path, data):
        writing.append(Path(path))
        return real_write(path, data)

    def fsync(fd):
        if writing and writing[-1].name.endswith("年度报告.docx"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(ooxml, "_atomic_write", atomic_write)
    monkeypatch.setattr(os, "fsync", fsync)
    result, text = _invoke("reports", str(SAMPLE), "--year", str(YEAR), "--output", str(out), "-j", "1")
    assert result.exit_code == 2, result.output
    assert "磁盘空间不足" in text and "程序内部错误" not in text
    year_dir = out / str(YEAR)
    assert f"无法写入 {writing[-1]}" in text and writing[-1].parent == year_dir
    assert _temps(out) == []
    assert not [p for p in year_dir.glob("*年度报告.docx") if "全县汇总" not in p.name]
    assert _manifest(out)["complete"] is False
    assert not (year_dir / lock.LOCK_FILE).exists()


def test_a_read_only_output_exits_2_with_a_chinese_message(tmp_path, monkeypatch):
    def read_only(*a, dir=None, **kw):
        raise OSError(errno.EROFS, "Read-only file system", dir)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "out"
    result, text = _invoke("validate", str(SAMPLE), "--year", str(YEAR), "--output", str(out), "-j", "1")
    assert result.exit_code == 2, result.output
    assert "输出位置是只读的" in text and str(out / str(YEAR)) in text and "--output" in text
    assert _temps(out) == []


def test_no_permission_met_anywhere_in_a_run_exits_2_naming_the_path(tmp_path, monkeypatch):
    def denied(out_dir):
        raise PermissionError(errno.EACCES, "Permission denied", str(out_dir / "manifest.json"))

    monkeypatch.setattr(run, "_old_outputs", denied)
    out = tmp_path / "out"
    result, text = _invoke("validate", str(SAMPLE), "--year", str(YEAR), "--output", str(out), "-j", "1")
    assert result.exit_code == 2, result.output
    assert f"没有权限访问 {out / str(YEAR) / 'manifest.json'}" in text


def test_an_output_location_that_is_a_file_exits_2(tmp_path):
    (tmp_path / "out").write_text("", encoding="utf-8")
    result, text = _invoke("validate", str(SAMPLE), "--year", str(YEAR), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "不是文件夹" in text and str(tmp_path / "out") in text


# ------------------------------------------------------------------------------------------ make, messages


def test_make_reports_with_a_workspace_path_with_spaces_and_chinese_characters(tmp_path):
    make = shutil.which("make")
    if not make:
        _skip("make is not installed")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "nianbao").is_file():
        _skip(f"no nianbao console script beside {sys.executable}")
    root = tmp_path / "县 政务 公开办" / "示例 县（2024）"
    shutil.copytree(SAMPLE, root)
    out = tmp_path / "输出 目录"
    proc = subprocess.run(
        [make, "--no-print-directory", "-o", str(bin_dir / "nianbao"), "reports", f"VENV={bin_dir.parent}",
         f"WORKSPACE={root}", f"OUTPUT={out}", "ARGS=--jobs 1"],
        cwd=ROOT, capture_output=True, timeout=600,
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "unexpected extra argument" not in err
    assert len(list((out / str(YEAR)).glob("*.docx"))) == 12 + 1  # and the county summary
    assert all(i["status"] == "read" for i in _manifest(out)["inputs"])


def test_the_advice_of_file_and_year_findings_can_be_followed(tmp_path):
    valid = D.write_valid(tmp_path / "valid.xlsx")
    ods = D.make_defect("ods", valid, tmp_path)
    (fnd,) = read.read_batch([ods], YEAR).findings
    assert fnd.code == "FILE_NOT_XLSX" and "LibreOffice" in fnd.message and "Excel 2007-365 (.xlsx)" in fnd.message
    year = D.make_defect("report_year", valid, tmp_path)
    from pipeline import validate

    (fnd,) = [f for f in validate.validate(read.read_batch([year], YEAR)).findings if f.code == "REPORT_YEAR"]
    assert "预填报表" in fnd.message and "已锁定" in fnd.message and "改正“报告年度”" not in fnd.message
