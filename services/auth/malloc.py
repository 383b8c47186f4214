"""Give argon2's memory back to the system after each hash, so an idle auth service stays small.

Each argon2id check allocates `YUBIN_AUTH_ARGON2_MEMORY_KIB` (19 MiB) with malloc. glibc serves a block
that large with mmap and unmaps it on free, but then raises its mmap threshold to the freed size (the
"dynamic threshold"), so every later hash is served from the heap of the worker thread's arena and stays
there when freed: one 19 MiB block per hashing thread, for the life of the process (idle RSS 76-79 MB
instead of ~56 after the lab's start-up logins). A fixed threshold keeps these blocks mmapped. The price
is the page faults of fresh memory at every hash (~20 % more CPU per check, measured in-process), which
the login cache (login_cache.py) makes rare.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD_BYTES = 1024 * 1024
"""Blocks of this size and larger are mmapped: argon2's buffers, hardly anything else Python allocates."""


def keep_large_blocks_mmapped() -> bool:
    """Fix glibc's mmap threshold (disabling its dynamic raise); False where libc is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt; nothing to fix there
        return False
