"""The C allocator, set for one training run on the CPU (glibc on Linux; elsewhere nothing changes).

Every training step allocates and frees the same few tensors of 0.1–5 MB (a batch, its activations, their
gradients). glibc serves blocks above its mmap threshold (128 KB at the start) with a fresh ``mmap`` each time
and returns them to the system when freed, so a step pays for new zeroed pages until the threshold has risen
(it rises only as such blocks are freed). ``tune_allocator`` sets both thresholds once, so the blocks come from
the heap from the first step on. The command line's training run calls it (``cli.train_command``); sweeps and
notebooks leave glibc as it is. No benchmark times the setting on its own: docs/performance.md ("Where the speed
comes from") says how to compare a default run with and without it on your machine. One exception: Dask's nanny
starts each worker with a trim threshold alone (``MALLOC_TRIM_THRESHOLD_=65536``), which turns glibc's adaptive
mmap threshold off; every run of a sweep repairs that (``repair_trim_only``, called by ``pool.run_job``), and
nothing else; ``benchmarks/bench_sweep.py`` times the Dask sweep against the local pool.
It changes speed only, never a result: the same weights to the last bit (``tests/_io/test_allocator.py``).

Set ``BADNETS_MALLOC=default`` (or your own ``MALLOC_*`` / ``GLIBC_TUNABLES`` variables) to leave glibc as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # blocks up to 32 MB come from the heap (glibc's own ceiling for its adaptive rule)
TRIM_THRESHOLD = 256 * 2**20  # keep up to 256 MB of freed heap instead of returning it after each step
OPT_OUT_ENV = "BADNETS_MALLOC"

_state: dict[str, bool] = {}


def _opted_out() -> bool:
    return os.environ.get(OPT_OUT_ENV, "").lower() == "default"


def _user_chose() -> bool:
    """The user set glibc's allocator themselves, or asked us to leave it alone."""
    if _opted_out():
        return True
    return "GLIBC_TUNABLES" in os.environ or any(v.startswith("MALLOC_") for v in os.environ)


def trim_only() -> bool:
    """Only a trim threshold is set in the environment, as Dask's nanny starts every worker
    (``MALLOC_TRIM_THRESHOLD_=65536``, its ``distributed.nanny.pre-spawn-environ``). Set alone, it turns glibc's
    adaptive mmap threshold off: every training step then maps and unmaps its tensors afresh."""
    others = [v for v in os.environ if v.startswith("MALLOC_") and v != "MALLOC_TRIM_THRESHOLD_"]
    return "MALLOC_TRIM_THRESHOLD_" in os.environ and not others and "GLIBC_TUNABLES" not in os.environ


def repair_trim_only() -> bool:
    """In a process started with a trim threshold alone (a Dask worker), set both thresholds as
    ``tune_allocator`` does; anywhere else change nothing. True when they were set now or before."""
    if _opted_out() or not trim_only():
        return _state.get("tuned", False)
    return tune_allocator(force=True)


def tune_allocator(force: bool = False) -> bool:
    """Set glibc's mmap and trim thresholds for this process, once; True when they are set (now or before).
    Not where the user set glibc's allocator (``MALLOC_*``, ``GLIBC_TUNABLES``, ``BADNETS_MALLOC=default``),
    unless ``force`` (``repair_trim_only``).

    Both are set together: setting only the trim threshold turns glibc's adaptive mmap threshold off and leaves
    it at 128 KB, so that every step maps and unmaps its tensors afresh."""
    if _state.get("tuned"):
        return True
    if "tuned" in _state and not force:
        return False
    tuned = False
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" and (force or not _user_chose()):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            tuned = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
        except (OSError, AttributeError):
            tuned = False
    _state["tuned"] = tuned
    return tuned
