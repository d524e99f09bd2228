"""What the numbers were measured on: CPU model, cores, the instruction sets that matter to
PyTorch on a CPU, memory, library versions."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import threading
import time
from pathlib import Path

FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _meminfo_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else None


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def has_bf16(flags: set[str] | None = None) -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX): said on the machine line. Nothing is
    measured differently for it."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def clock_mhz(cpuinfo: str | None = None) -> float | None:
    """The first core's clock as /proc/cpuinfo reports it (the current one, not a rated turbo)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    return float(match.group(1)) if match else None


FMA_UNITS_PER_CORE = 2  # the most any x86 core has; flags cannot say how many a core has


def fma_peak_gflops(flags: set[str], cores: int, mhz: float) -> tuple[float, str]:
    """The float32 FLOP/s no kernel can beat on ``cores`` cores at ``mhz``: each core retiring
    FMA_UNITS_PER_CORE fused multiply-adds (2 FLOPs) a cycle on the widest vectors its flags
    name. An upper bound: a core with one FMA unit, or with AVX-512 split in two halves,
    reaches half of it. Returns the figure and how it was reached."""
    if "avx512f" in flags:
        lanes, isa = 16, "AVX-512"
    elif "avx2" in flags or "avx" in flags:
        lanes, isa = 8, "AVX2" if "avx2" in flags else "AVX"
    else:
        lanes, isa = 4, "SSE"
    per_cycle = FMA_UNITS_PER_CORE * lanes * 2
    gflops = cores * mhz / 1000 * per_cycle
    how = f"{cores} cores x {mhz / 1000:.2f} GHz x {FMA_UNITS_PER_CORE} FMA units x {lanes} fp32 lanes ({isa}) x 2"
    return gflops, how


def describe() -> dict:
    import cv2
    import numpy
    import torch

    text = _cpuinfo()
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    flags = cpu_flags(text)
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_flags": {flag: flag in flags for flag in FLAGS_OF_INTEREST},
        "bf16": has_bf16(flags),
        "clock_mhz": clock_mhz(text),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _meminfo_gib(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def one_line(machine: dict) -> str:
    bf16 = "bf16" if machine["bf16"] else "no bf16"
    return (
        f"{machine['cpu']}, {machine['cores']} cores ({machine['torch_cpu_capability']}, {bf16}), "
        f"{machine['memory_gib']} GiB, torch {machine['torch']}"
    )


# -- how busy the machine was with other work -------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_seconds() -> float:
    """CPU seconds spent by every process on the machine so far (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


# Containers this benchmark started: their processes are its own work, though the engine runs
# them outside this process's tree (under a shim whose parent is init).
_adopted_containers: set[str] = set()


def adopt_container(container_id: str) -> None:
    """Count the processes of the container ``container_id`` (its full id, as ``docker run
    --detach`` prints it) as this benchmark's own in :class:`OtherLoad`."""
    container_id = container_id.strip()
    if container_id:  # an empty id would be found in every process's control groups
        _adopted_containers.add(container_id)


def _descendant_seconds() -> dict[tuple[int, int], float]:
    """CPU seconds of each live descendant and adopted container process, keyed by (pid, start
    time) so a reused pid is new."""
    seconds = {}
    for pid in _descendants(os.getpid()) + _in_containers(_adopted_containers):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[(pid, int(stat[19]))] = (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
    return seconds


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _in_containers(containers: set[str], proc: Path = Path("/proc")) -> list[int]:
    """The processes whose control groups name one of ``containers`` (each engine puts a
    container's processes in control groups named by its id)."""
    if not containers:
        return []
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                groups = (entry / "cgroup").read_text()
                if any(container in groups for container in containers):
                    found.append(int(entry.name))
    return found


class OtherLoad:
    """How many cores, on average, processes other than the benchmark's own kept busy
    between ``start()`` and ``cores()``: the machine's busy time (/proc/stat) minus this
    process's, its descendants' and its containers' (:func:`adopt_container`). They are
    sampled twice a second, so the last half second of one that ends is missed (counted as
    someone else's)."""

    INTERVAL_S = 0.5

    def start(self) -> OtherLoad:
        self._wall, self._busy = time.monotonic(), _busy_seconds()
        self._self = self._self_seconds()
        self._first = _descendant_seconds()
        self._last = dict(self._first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="other-load", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self._last.update(_descendant_seconds())

    @staticmethod
    def _self_seconds() -> float:
        times = os.times()
        return times.user + times.system

    def cores(self) -> float:
        self._stop.set()
        self._thread.join()
        self._last.update(_descendant_seconds())
        wall = time.monotonic() - self._wall
        own = (self._self_seconds() - self._self) + sum(
            seconds - self._first.get(key, 0.0) for key, seconds in self._last.items()
        )
        others = (_busy_seconds() - self._busy) - own
        return max(0.0, others / wall) if wall > 0 else 0.0
