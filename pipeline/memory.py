"""Memory handed back to the system before a process forks workers or goes on with a smaller working set."""

from __future__ import annotations


def release() -> None:
    """Collect garbage and give the memory freed so far back to the system (glibc's malloc_trim; elsewhere only
    the collection). Reading and validating leave much of their freed memory with the allocator; a worker forked
    afterwards would count it again."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
