"""One nianbao run at a time per output folder: ``<output>/<year>/.nianbao.lock``.

On Linux and macOS the lock is an ``fcntl.flock`` on that file: the kernel drops it when the process that holds it
ends, however it ends, so a lock left by a killed run is taken over without asking. Elsewhere (or on a
filesystem without flock) the file is created exclusively and holds the process id; a lock whose process is gone
(same computer) is taken over. The file says which process holds it (pid, computer, start, command) for the
message of the run that is refused; it is removed when the run ends. It is hidden (never read as input, never
listed as an output, never removed as a stale output).
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from .ooxml import OUTPUT_ERRNOS, OutputError, output_message

LOCK_FILE = ".nianbao.lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class OutputBusy(OutputError):
    """Another run holds the output folder's lock."""


def _holder_text(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _busy(path: Path) -> OutputBusy:
    h = _holder_text(path)
    who = (f"进程 {h.get('pid', '?')}，计算机 {h.get('host', '?')}，{h.get('started', '?')} 开始"
           + (f"，命令 nianbao {h['command']}" if h.get("command") else "")) if h else "进程信息未知"
    return OutputBusy(
        f"另一个 nianbao 正在向 {path.parent} 写入（{who}）：同一输出目录一次只能运行一个。请等它结束后再运行，"
        "或用 --output 指定另一个输出目录。"
    )


def _stamp(command: str) -> bytes:
    return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                        "command": command}, ensure_ascii=False) + "\n").encode("utf-8")


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _acquire_flock(path: Path, command: str) -> int | None:
    """The locked descriptor; None when flock is not supported here. Raises OutputBusy."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _busy(path) from None
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return None
            raise
        if _same_file(fd, path):  # not a file the previous holder removed while we waited for it
            os.ftruncate(fd, 0)
            os.write(fd, _stamp(command))
            return fd
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _acquire_pidfile(path: Path, command: str) -> int:
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            h = _holder_text(path)
            pid = h.get("pid")
            if h.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                try:  # a run that died: its lock is taken over
                    path.unlink()
                except FileNotFoundError:
                    pass
                continue
            raise _busy(path) from None
        os.write(fd, _stamp(command))
        return fd
    raise _busy(path)


@contextmanager
def hold(out_dir: Path, command: str):
    """Hold ``out_dir``'s lock for the ``with`` block; raises OutputBusy when another run holds it."""
    path = Path(out_dir) / LOCK_FILE
    try:
        fd = _acquire_flock(path, command) if fcntl is not None else None
        if fd is None:
            fd = _acquire_pidfile(path, command)
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:
            raise OutputError(output_message(e, path)) from e
        raise
    try:
        yield path
    finally:
        try:  # removed while still held: the next run finds no file, or a fresh one of its own
            path.unlink()
        except OSError:
            pass
        os.close(fd)
