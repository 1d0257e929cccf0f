"""The machine a run trains on: the device, and the CPU threads a run uses on a shared machine."""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import torch

THREADS_RECHECK_S = 2.0  # seconds between two looks at the machine's load while training
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # a user who sets these chooses the thread count
_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anyone here changes it


def select_device(name: str | None = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; 'cpu', 'cuda', 'cuda:N', 'mps' are checked."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N, mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N, mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but Apple MPS is not available here; use auto or cpu")
    return device


# ----------------------------------------------------------------------------- threads on a shared machine


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int] | None = None) -> int:
    """Physical cores among the logical ``cpus`` this process may use (Linux sysfs), else their count."""
    cpus = _usable_cpus() if cpus is None else cpus
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def _cgroup_cpu_limit() -> int | None:
    """The container's CPU quota in whole cores (cgroup v2 cpu.max), None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _own_running_threads() -> int:
    """Threads of this process that are running or runnable now (state R in /proc/self/task/*/stat)."""
    running = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            running += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return running


def busy_elsewhere(samples: int = 5) -> float:
    """How many cores other processes keep busy right now.

    Linux: runnable threads system-wide (/proc/loadavg, 4th field) minus this process's own, median of a few
    samples 0.5 ms apart. Elsewhere: the 1-minute load average (which lags, and counts this process too).
    """
    try:
        counts = []
        for i in range(samples):
            if i:
                time.sleep(0.0005)
            total = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            counts.append(max(0, total - _own_running_threads()))
        return float(statistics.median(counts))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return 0.0


def usable_cores() -> int:
    """Physical cores of this process's CPU affinity, capped by a cgroup CPU quota."""
    cores, limit = physical_cores(), _cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def choose_threads() -> int:
    """Intra-op threads for training now: the cores this process may use minus those other processes keep busy.

    The rule: n = max(1, cores - busy), where "cores" are the physical cores of this process's CPU affinity
    (capped by a cgroup CPU quota) and "busy" is ``busy_elsewhere()`` (scaled to the affinity's share of the
    machine's CPUs). A run alone gets every core, as torch's default does; runs started together end up
    sharing the cores instead of each starting one spinning thread per core. ``fit`` re-checks every few seconds,
    so a run speeds up again when the others finish. ``benchmarks/bench_contention.py`` measures the rule against
    torch's default, alone and with several runs at once (its current table: docs/performance.md).
    """
    cpus, cores = _usable_cpus(), usable_cores()
    share = len(cpus) / max(os.cpu_count() or 1, len(cpus))  # the load count is machine-wide: keep our CPUs' part
    return max(1, min(cores, cores - round(busy_elsewhere() * share)))


def threads_set_by_user() -> bool:
    """True when $OMP_NUM_THREADS / $MKL_NUM_THREADS is set or torch's thread count was changed from its default."""
    return any(os.environ.get(v) for v in THREADS_ENV) or torch.get_num_threads() != _TORCH_DEFAULT_THREADS


class ThreadGovernor:
    """Applies ``choose_threads`` during CPU training unless the user chose a thread count; restores it after."""

    def __init__(self, device: torch.device) -> None:
        self.saved = torch.get_num_threads()
        self.active = device.type == "cpu" and not threads_set_by_user()
        self.checked = -math.inf

    def update(self, every: float = 0.0) -> None:
        """Re-apply the rule, at most once per ``every`` seconds."""
        now = time.monotonic()
        if not self.active or now - self.checked < every:
            return
        self.checked = now
        n = choose_threads()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)

    def restore(self) -> None:
        if self.active and torch.get_num_threads() != self.saved:
            torch.set_num_threads(self.saved)
