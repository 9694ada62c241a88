"""Every process a run forks, and how a run ends when it is told to stop: the one home for parallelism.

- ``Pool``: worker processes forked from this one that inherit a job object (nothing pickled but the task's
  small arguments and its result); with one job or no ``fork`` (not Linux) the same tasks run here, in order.
- ``in_child``: one function in a forked process, its result sent back through a pipe (the check stage: what it
  builds dies with that process, and the caller receives only the result).
- ``release_memory``: freed memory handed back to the system before forking (glibc's malloc_trim).
- ``map_chunks``: a ``Chunked`` job over items in a pool, sent back in packed chunks (``pack_columns``,
  ``concat_columns``): the reading stage's workers.

Every process a run forks (the check stage's process, the reading, validation and rendering workers) starts with
``worker_start``: it dies with the process that started it (Linux ``PR_SET_PDEATHSIG``), ignores the terminal's
Ctrl-C (the main process handles it and stops them) and takes SIGTERM's default action. The main process runs
under ``interruptible()``: SIGINT, SIGTERM and SIGHUP (those not ignored when it started, as nohup does) kill every
worker at once and raise ``Interrupted`` in the main thread, so the run unwinds (no manifest is written: the output folder's manifest keeps saying the run did
not complete) and the command line says so and exits with 128 + the signal's number (130 for Ctrl-C). Should the
unwinding hang, the process ends by itself after ``FORCED_EXIT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

#: Seconds between a stop signal and the process's own forced exit, should unwinding hang.
FORCED_EXIT_SECONDS = 4.0

_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
_received: list[int] = []  # signals received by this process under ``interruptible`` (first one first)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return str(self.signum)


def _set_pdeathsig(sig: int) -> bool:
    """Linux: this process receives ``sig`` when the thread that forked it ends."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(1, int(sig), 0, 0, 0) == 0  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def worker_start(parent_pid: int | None = None) -> None:
    """First thing in every forked process (a pool's initializer, or called by a Process's target).

    Dies with its parent (SIGKILL: it writes nothing worth finishing; what it wrote is atomic), leaves Ctrl-C to
    the main process, and restores SIGTERM's default (a handler inherited from the main process would make it
    unwind instead of stopping).
    """
    for s in _SIGNALS:
        signal.signal(s, signal.SIG_IGN if s == signal.SIGINT else signal.SIG_DFL)
    _received.clear()
    _set_pdeathsig(signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent was gone before prctl took effect
        os._exit(1)


def stop_workers() -> None:
    """Kill every child process this process started through multiprocessing (pool workers, the check stage's
    process); their own children die with them (``worker_start``)."""
    import multiprocessing

    for p in multiprocessing.active_children():
        with contextlib.suppress(OSError, AttributeError, ValueError):
            p.kill()


def received() -> int | None:
    """The first stop signal received under ``interruptible``, or None."""
    return _received[0] if _received else None


def raise_if_interrupted() -> None:
    """Raise ``Interrupted`` if a stop signal arrived (an interruption that some code swallowed — a
    KeyboardInterrupt raised inside a finaliser is only printed — still ends the run as interrupted)."""
    if _received:
        raise Interrupted(_received[0])


def exit_now(code: int) -> None:
    """End the process at once after a stop (no exit handlers: the workers are already gone, and the standard
    library's clean-up of what the signal cut short would only print tracebacks)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _force_exit(code: int) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write("已中断：程序未能及时退出，已强制结束。\n")
        sys.stderr.flush()
    os._exit(code)


def _handler(signum: int, frame) -> None:
    first = not _received
    _received.append(signum)
    stop_workers()
    if first:
        timer = threading.Timer(FORCED_EXIT_SECONDS, _force_exit, (128 + signum,))
        timer.daemon = True
        timer.start()
        raise Interrupted(signum)
    _force_exit(128 + _received[0])  # a second signal while unwinding: end now


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within it (main thread only), SIGINT/SIGTERM/SIGHUP stop the workers and raise ``Interrupted``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    hook = sys.unraisablehook
    _received.clear()
    for s in _SIGNALS:
        if previous[s] is not signal.SIG_IGN:  # ignored on purpose (nohup, a background job): stays ignored
            signal.signal(s, _handler)
    sys.unraisablehook = _unraisable(hook)
    try:
        yield
        raise_if_interrupted()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        sys.unraisablehook = hook


def _unraisable(hook):
    """Once a stop signal has arrived, an exception raised where Python can only print it (an ``Interrupted`` that
    landed in a finaliser, or a finaliser that it cut short) is not printed: the run still ends as interrupted
    (``raise_if_interrupted``)."""

    def unraisable(info) -> None:
        if not _received:  # once stopped, what fails in a finaliser is a consequence of the stop
            hook(info)

    return unraisable


# ---------------------------------------------------------------------------------------------- forking


def can_fork() -> bool:
    """Workers are forked (and inherit their job) on Linux only; elsewhere everything runs in one process."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def default_jobs() -> int:
    """Processes to use by default: every core this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def release_memory() -> None:
    """Collect garbage and give the memory freed so far back to the system (glibc's malloc_trim; elsewhere only
    the collection). Reading and validating leave much of their freed memory with the allocator; a worker forked
    afterwards would count it again."""
    import ctypes
    import ctypes.util

    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


_INHERITED: dict[int, object] = {}  # pool key → the job its forked workers inherit
_keys = itertools.count(1)


def _ready() -> None:
    return None


def _call(key: int, fn: Callable, args: tuple):
    return fn(_INHERITED[key], *args)


class Task:
    """One task of a ``Pool``: its result, computed by a worker (or here)."""

    def __init__(self, pool: Pool, fn: Callable, args: tuple, future: Future):
        self._pool, self._fn, self._args, self.future = pool, fn, args, future

    def result(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool:  # a worker died (out of memory, killed): the task here, unless told to stop
            raise_if_interrupted()
            return self._fn(self._pool.job, *self._args)


class Pool:
    """``workers`` processes forked from this one, each inheriting ``job``; ``submit(fn, *args)`` runs
    ``fn(job, *args)`` in one of them (``fn`` a module-level function; ``args`` and the result are pickled).

    Before forking, freed memory goes back to the system and the objects this process holds are frozen out of
    the workers' garbage collection (which would otherwise copy every page it touches); every worker is forked
    when the pool is made, before any thread the caller starts afterwards (a progress display). Without fork,
    or when no process can be had, each task runs here when submitted: the same results (``workers`` = 0: always here). Leaving the ``with`` block on an exception cancels what has not started; on a stop signal
    (KeyboardInterrupt) the workers are killed.
    """

    def __init__(self, workers: int, job: object = None, *, release: bool = True):
        self.job = job
        self._executor = None
        self._key = 0
        if workers >= 1 and can_fork():
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._key = next(_keys)
            _INHERITED[self._key] = job
            if release:
                release_memory()
            gc.freeze()
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                    initializer=worker_start, initargs=(os.getpid(),))
                self._executor.submit(_ready)  # forks every worker now (fork start method: all at the first task)
            except OSError:  # no process to be had (memory, limits): every task here
                self._shutdown(cancel=True)
            finally:
                gc.unfreeze()

    @property
    def parallel(self) -> bool:
        return self._executor is not None

    def submit(self, fn: Callable, *args) -> Task:
        if self._executor is not None:
            return Task(self, fn, args, self._executor.submit(_call, self._key, fn, args))
        future: Future = Future()
        try:
            future.set_result(fn(self.job, *args))
        except Exception as e:  # noqa: BLE001  (raised again by result(), as a worker's would be)
            future.set_exception(e)
        return Task(self, fn, args, future)

    @staticmethod
    def completed(tasks: Iterable[Task]) -> Iterator[Task]:
        """The tasks as they finish."""
        from concurrent.futures import as_completed

        by_future = {t.future: t for t in tasks}
        for fut in as_completed(by_future):
            yield by_future[fut]

    def _shutdown(self, *, cancel: bool, kill: bool = False) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            if kill:  # told to stop: no worker finishes its task
                stop_workers()
            executor.shutdown(wait=True, cancel_futures=cancel)
        _INHERITED.pop(self._key, None)

    def close(self) -> None:
        """Wait for every task submitted, then end the workers."""
        self._shutdown(cancel=False)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._shutdown(cancel=exc_type is not None,
                       kill=exc_type is not None and not issubclass(exc_type, Exception))


# ---------------------------------------------------------------------------------------------- one child

_KEPT: list = []  # in a child of ``in_child``: objects left for its exit, never freed one by one


def _child(sender, parent: int, fn: Callable, args: tuple, keep: bool) -> None:
    worker_start(parent)
    try:
        result = ("ok", fn(*args, keep=_KEPT) if keep else fn(*args), "")
    except BaseException as e:  # noqa: BLE001  (raised again in the parent, with this traceback)
        result = ("error", e, traceback.format_exc())
    try:
        sender.send(result)
    except Exception as e:  # noqa: BLE001  an exception that cannot be pickled: its text and traceback
        sender.send(("error", RuntimeError(f"{type(result[1]).__name__}: {result[1]} ({e})"), result[2]))
    sender.close()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)  # what the function built is not freed object by object


def in_child(fn: Callable, *args, keep: bool = False, name: str = "nianbao-child"):
    """``fn(*args)`` in a forked process; its result (pickled) is returned here, its exception raised here
    with the child's traceback as a note. With ``keep``, ``fn`` is called with ``keep=`` a list whose objects the
    child leaves for its exit. Without fork, when no process can be had, or when the process dies (out of
    memory, killed — but not because the run was told to stop), ``fn(*args)`` runs here instead."""
    import multiprocessing
    import multiprocessing.connection

    if not can_fork():
        return fn(*args)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    try:
        process = context.Process(target=_child, args=(sender, os.getpid(), fn, args, keep), name=name)
        process.start()
    except OSError:  # no process to be had (memory, limits): here
        receiver.close()
        sender.close()
        return fn(*args)
    sender.close()
    outcome = payload = None
    gc.disable()  # no collection while the result's many objects are unpickled
    try:
        # the child's own workers inherit the pipe: its death is seen by its sentinel, not by an end of file
        ready = multiprocessing.connection.wait([receiver, process.sentinel])
        if receiver in ready or receiver.poll():
            outcome, payload, trace = receiver.recv()
    except EOFError:  # died while sending
        pass
    finally:
        gc.enable()
        receiver.close()
        if process.is_alive() and sys.exc_info()[0] is not None:  # leaving on an exception: never wait for it
            process.kill()
        process.join()
    raise_if_interrupted()  # killed because the run was told to stop: not a reason to start again
    if outcome == "ok":
        return payload
    if outcome == "error":
        payload.add_note(f"在子进程（{name}）中：\n{trace}")
        raise payload
    return fn(*args)


# ---------------------------------------------------------------------------------------------- chunked work

SERIAL_CHUNK = 64  # items packed together when the work runs in this process


@dataclass(frozen=True)
class Chunked:
    """Work done item by item and sent back in chunks: the job a ``map_chunks`` pool's workers inherit (never
    pickled; only the items and the results are).

    ``work(state, item)`` → the item's result; ``strip(result)`` → what of it comes back item by item (a file's
    verdict and findings); ``pack(results)`` → the rest of a chunk's results, packed for the pipe
    (``pack_columns``: a few arrays per chunk — pickling a dict per cell cost more than reading the cell, and
    unpacking small objects by the million left the heap fragmented)."""

    state: object
    work: Callable[[object, object], object]
    strip: Callable[[object], object]
    pack: Callable[[list], object]


def _run_chunk(job: Chunked, items: list) -> tuple[list, object]:
    results = [job.work(job.state, item) for item in items]
    return [job.strip(r) for r in results], job.pack(results)


def map_chunks(job: Chunked, groups: list[list], *, jobs: int, done: Callable[[int, list, list], object],
               progress: Callable[[object], None] | None = None) -> list:
    """``job`` over every item of every group, in ``jobs`` forked processes (in this one with one job, a single
    item or no fork). ``done(g, stripped, packs)`` puts group ``g`` together — its items' stripped results and
    its chunks' packs, both in item order — as soon as its last chunk is back (while the workers go on with the
    other groups); ``progress(item)`` is called once per item as it comes back. Returns what ``done`` returned,
    in group order: the same forked or not."""
    out: list = [None] * len(groups)
    finished = [False] * len(groups)
    if jobs > 1 and sum(len(items) for items in groups) > 1 and can_fork():
        stripped: list[list] = [[None] * len(items) for items in groups]
        packs: list[dict[int, object]] = [{} for _ in groups]  # by the index of the chunk's first item
        with Pool(jobs, job, release=False) as pool:
            chunk_of = {}
            pending = [0] * len(groups)
            for g, items in enumerate(groups):
                size = max(1, min(16, len(items) // (jobs * 8)))
                for i in range(0, len(items), size):
                    chunk_of[pool.submit(_run_chunk, items[i:i + size])] = (g, i)
                    pending[g] += 1
            for task in pool.completed(chunk_of):
                g, first = chunk_of[task]
                small, pack = task.result()
                packs[g][first] = pack
                stripped[g][first:first + len(small)] = small
                if progress is not None:
                    for item in groups[g][first:first + len(small)]:
                        progress(item)
                pending[g] -= 1
                if not pending[g]:  # while the workers do the other groups
                    out[g] = done(g, stripped[g], [packs[g][k] for k in sorted(packs[g])])
                    finished[g] = True
                    stripped[g], packs[g] = [], {}
    else:
        for g, items in enumerate(groups):
            small, chunks = [], []
            for first in range(0, len(items), SERIAL_CHUNK):
                results = []
                for item in items[first:first + SERIAL_CHUNK]:
                    results.append(job.work(job.state, item))
                    small.append(job.strip(results[-1]))
                    if progress is not None:
                        progress(item)
                chunks.append(job.pack(results))
            out[g] = done(g, small, chunks)
            finished[g] = True
    for g, items in enumerate(groups):
        if not finished[g]:  # no item
            out[g] = done(g, [], [])
    return out


def _as_columns(rows: list[dict] | dict[str, list]) -> dict[str, list]:
    """Rows (dicts with the same keys) as columns."""
    if isinstance(rows, dict) or not rows:
        return rows or {}
    return {k: [r[k] for r in rows] for k in rows[0]}


def pack_columns(tables: Iterable[list[dict] | dict[str, list]], *, skip: Collection[str] = (),
                 categorical: Collection[str] = (), floats: Collection[str] = (),
                 bools: Collection[str] = ()) -> dict[str, object]:
    """Tables with the same columns (rows as dicts, or columns as lists) as one set of columns packed for a pipe:
    those in ``categorical`` as pandas categoricals, ``floats`` and ``bools`` as numpy arrays, the others as
    lists; those in ``skip`` left out."""
    import numpy as np
    import pandas as pd

    cols: dict[str, list] = {}
    for table in tables:
        for k, v in _as_columns(table).items():
            if k not in skip:
                cols.setdefault(k, []).extend(v)
    return {
        k: (pd.Categorical(v) if k in categorical else np.asarray(v, dtype=np.float64) if k in floats
            else np.asarray(v, dtype=bool) if k in bools else v)
        for k, v in cols.items()
    }


def concat_columns(parts: list[dict[str, object]], rows: int) -> dict[str, object]:
    """The packed columns of consecutive chunks (``pack_columns``) as one set of columns (``rows`` long)."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import union_categoricals

    parts = [p for p in parts if p]
    out: dict[str, object] = {}
    for k in (parts[0] if parts else {}):
        cols = [p[k] for p in parts]
        if isinstance(cols[0], pd.Categorical):
            col = union_categoricals(cols, sort_categories=True)
        elif isinstance(cols[0], np.ndarray):
            col = np.concatenate(cols)
        else:
            col = [x for c in cols for x in c]
        if len(col) != rows:
            raise AssertionError(f"{len(col)} rows of {k}, expected {rows} (one per spec entry and workbook)")
        out[k] = col
    return out
