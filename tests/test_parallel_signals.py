"""The one home of parallelism (pipeline/parallel.py).

A run told to stop (SIGTERM, SIGINT to the main process alone) ends in order: its workers stop with it, the
console says it was interrupted, the exit code is 128 + the signal, the manifest says the run did not complete,
and no process of the run is left after 5 s. Every worker process dies with the process that started it. A pool
gives the same results forked or in this process; a task whose worker died is done here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import parallel, run, workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc: Linux")


def _session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, command) of every live process of session ``sid`` (zombies excluded)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        state, session = rest[0], int(rest[3])
        if session == sid and state != "Z":
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                cmd = "?"
            out.append((int(d.name), cmd))
    return out


@pytest.fixture(scope="module")
def big_workspace(tmp_path_factory) -> Path:
    """The sample county with 400 more copies of its workbooks in this year's folder (hard links): reading takes
    a few seconds with two workers, long enough to be stopped while it reads."""
    root = tmp_path_factory.mktemp("signals") / "county"
    shutil.copytree(SAMPLE, root)
    extra = root / str(YEAR) / "副本"
    extra.mkdir()
    sources = sorted((root / str(YEAR)).glob("*.xlsx"))
    for i in range(400):
        src = sources[i % len(sources)]
        dst = extra / f"{i:03d}-{src.name}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return root


def _start(ws: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli", "reports", str(ws), "--year", str(YEAR), "--output", str(out),
           "--jobs", "2"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "COLUMNS": "200"})


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < end, "the moment to stop the run never came"
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _all_descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _stop_and_check(proc: subprocess.Popen, sig: int, out: Path) -> str:
    sid = proc.pid  # start_new_session: the session's id is the run's pid
    proc.send_signal(sig)  # the main process alone
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(sid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the run did not end within 30 s of the signal")
    deadline = time.monotonic() + 5
    while _session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _session_processes(sid)
    if left:
        os.killpg(sid, signal.SIGKILL)
    assert not left, f"processes of the run still alive 5 s after it ended: {left}"
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "已中断" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    manifest = out / str(YEAR) / run.MANIFEST
    assert json.loads(manifest.read_text(encoding="utf-8"))["complete"] is False
    return err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_while_its_workers_read_ends_in_order(big_workspace, tmp_path, sig):
    out = tmp_path / "out"
    proc = _start(big_workspace, out)
    # the check stage's process and its two reading workers are up
    _wait_for(lambda: len(_all_descendants(proc.pid)) >= 3, proc)
    time.sleep(0.3)
    _stop_and_check(proc, sig, out)
    assert not (out / str(YEAR) / "校验结果.json").exists()


def test_a_run_stopped_while_it_renders_ends_in_order(tmp_path):
    ws = tmp_path / "county"
    shutil.copytree(SAMPLE, ws)
    out = tmp_path / "out"
    proc = _start(ws, out)
    year_dir = out / str(YEAR)
    # validation outputs written: the check stage is over, the render workers start
    _wait_for(lambda: (year_dir / "校验结果.json").exists() and _children(proc.pid), proc)
    _stop_and_check(proc, signal.SIGTERM, out)
    # the next run recovers: complete, every agency's report
    again = run.run(workspace.load(ws), YEAR, out, jobs=1)
    assert again.exit_code == 0
    assert json.loads((year_dir / run.MANIFEST).read_text(encoding="utf-8"))["complete"] is True


def test_workers_die_with_the_process_that_started_them(tmp_path):
    """A worker started with parallel.worker_start is killed when its parent dies, even by SIGKILL."""
    script = tmp_path / "parent.py"
    pidfile = tmp_path / "worker.pid"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from pipeline import parallel\n"
        "def work(path):\n"
        "    parallel.worker_start(os.getppid())\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    p = multiprocessing.get_context('fork').Process(target=work, args=(sys.argv[1],))\n"
        "    p.start()\n"
        "    time.sleep(120)\n",
        encoding="utf-8",
    )
    parent = subprocess.Popen([sys.executable, str(script), str(pidfile)], start_new_session=True)
    try:
        end = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()):
            assert time.monotonic() < end
            time.sleep(0.02)
        worker = int(pidfile.read_text())
        assert Path(f"/proc/{worker}").exists()
        parent.kill()
        parent.wait()
        end = time.monotonic() + 5
        while _session_processes(parent.pid) and time.monotonic() < end:
            time.sleep(0.02)
        assert not _session_processes(parent.pid), "the worker outlived its parent"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)


def test_an_interruption_swallowed_by_a_finaliser_still_ends_the_run_as_interrupted():
    """A signal whose KeyboardInterrupt lands where Python can only print it never lets the run end with exit 0."""
    try:
        with pytest.raises(parallel.Interrupted) as caught:
            with parallel.interruptible():
                parallel._received.append(signal.SIGINT)  # as the handler records it
        assert caught.value.exit_code == 130
        assert parallel.received() == signal.SIGINT
    finally:
        parallel._received.clear()


# ------------------------------------------------------------------------------------------------ the pool


def _square(job, x):
    return job["base"] + x * x


def _pid(job, _):
    return os.getpid()


def _die(job, x):
    if os.getpid() != job["parent"]:
        os._exit(9)  # the worker dies (as if out of memory)
    return x


def _fail(job):
    raise ValueError("坏数据")


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_pool_gives_the_same_results_forked_or_here(workers):
    with parallel.Pool(workers, {"base": 10}) as pool:
        tasks = [pool.submit(_square, i) for i in range(20)]
        assert [t.result() for t in tasks] == [10 + i * i for i in range(20)]
        pids = {t.result() for t in [pool.submit(_pid, i) for i in range(8)]}
    assert (os.getpid() in pids) == (workers == 0)
    assert parallel._INHERITED == {}  # the job is let go with the pool


def test_without_fork_every_task_runs_in_this_process(monkeypatch):
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    with parallel.Pool(2, {"base": 0}) as pool:
        assert not pool.parallel
        assert {pool.submit(_pid, i).result() for i in range(4)} == {os.getpid()}


def test_a_task_whose_worker_died_is_done_here():
    with parallel.Pool(1, {"parent": os.getpid()}) as pool:
        assert pool.submit(_die, 7).result() == 7


def test_an_error_in_a_worker_is_raised_by_its_result():
    with parallel.Pool(1, None) as pool:
        task = pool.submit(_fail)
        with pytest.raises(ValueError, match="坏数据"):
            task.result()


def _item_work(state, item):
    rows = [{"x": float(item + state["base"]), "s": f"s{item % 3}", "b": item % 2 == 0, "t": str(item)}]
    return {"item": item, "pid": os.getpid(), "rows": rows * (item % 3)}


def _item_strip(result):
    return result["item"], result["pid"]


def _item_pack(results):
    return parallel.pack_columns((r["rows"] for r in results), skip={"t"}, categorical={"s"}, floats={"x"},
                                 bools={"b"})


@pytest.mark.parametrize("jobs", [1, 2])
def test_chunked_work_gives_every_group_in_item_order_forked_or_here(jobs):
    groups = [list(range(40)), [], list(range(100, 103))]
    seen: list[int] = []

    def done(g, stripped, packs):
        cols = parallel.concat_columns(packs, sum(i % 3 for i, _ in stripped))
        return g, [i for i, _ in stripped], {pid for _, pid in stripped}, cols

    job = parallel.Chunked({"base": 0.5}, work=_item_work, strip=_item_strip, pack=_item_pack)
    out = parallel.map_chunks(job, groups, jobs=jobs, done=done, progress=seen.append)
    assert [o[0] for o in out] == [0, 1, 2] and [o[1] for o in out] == groups
    assert sorted(seen) == sorted(i for g in groups for i in g)
    assert (out[0][2] == {os.getpid()}) == (jobs == 1)
    for (_, items, _, cols), g in zip(out, groups):
        want = [i for i in g for _ in range(i % 3)]
        if not want:
            assert cols == {}
            continue
        assert set(cols) == {"x", "s", "b"}  # "t" skipped
        assert cols["x"].dtype == "float64" and list(cols["x"]) == [i + 0.5 for i in want]
        assert list(cols["s"]) == [f"s{i % 3}" for i in want] and list(cols["s"].categories) == ["s1", "s2"]
        assert cols["b"].dtype == bool and list(cols["b"]) == [i % 2 == 0 for i in want]


def _child_fails(x):
    raise LookupError(f"没有 {x}")


def _child_pid(x, keep=None):
    keep.append(object())
    return (os.getpid(), x)


def test_in_child_returns_the_result_and_raises_the_error_with_its_traceback():
    pid, x = parallel.in_child(_child_pid, 5, keep=True)
    assert x == 5 and pid != os.getpid()
    with pytest.raises(LookupError, match="没有 3") as caught:
        parallel.in_child(_child_fails, 3)
    assert any("_child_fails" in note for note in getattr(caught.value, "__notes__", []))


def test_a_run_without_fork_gives_the_same_outputs(tmp_path, monkeypatch):
    ws = tmp_path / "county"
    shutil.copytree(SAMPLE, ws)
    one = run.run(workspace.load(ws), YEAR, tmp_path / "one", jobs=2)
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    two = run.run(workspace.load(ws), YEAR, tmp_path / "two", jobs=2)
    assert one.exit_code == two.exit_code == 0

    def snap(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert snap(one.out_dir) == snap(two.out_dir)
