"""Worker processes and how a run ends when it is told to stop.

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
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

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


def worker_start(parent_pid: int | None = None, then: Callable | None = None, *args) -> None:
    """First thing in every forked process (a pool's initializer, or called by a Process's target).

    Dies with its parent (SIGKILL: it writes nothing worth finishing; what it wrote is atomic), leaves Ctrl-C to
    the main process, and restores SIGTERM's default (a handler inherited from the main process would make it
    unwind instead of stopping). ``then(*args)`` is the pool's own initializer, if any.
    """
    for s in _SIGNALS:
        signal.signal(s, signal.SIG_IGN if s == signal.SIGINT else signal.SIG_DFL)
    _received.clear()
    _set_pdeathsig(signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent was gone before prctl took effect
        os._exit(1)
    if then is not None:
        then(*args)


def pool_initializer(then: Callable | None = None, *args) -> tuple[Callable, tuple]:
    """(initializer, initargs) for a ProcessPoolExecutor whose workers start with ``worker_start``."""
    return worker_start, (os.getpid(), then, *args)


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
