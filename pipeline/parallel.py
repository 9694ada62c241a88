"""Every process a run forks, and how a run ends when it is told to stop: the one home for parallelism.

- ``Pool``: worker processes forked from this one that inherit a job object (nothing pickled but the task's
  small arguments and its result); with one job or no ``fork`` (not Linux) the same tasks run here, in order.
- ``in_child``: one function in a forked process, its result sent back through a pipe (the check stage: what it
  builds dies with that process, and the caller receives only the result).
- ``release_memory``: freed memory handed back to the system before forking (glibc's malloc_trim).

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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

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
