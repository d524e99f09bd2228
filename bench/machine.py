"""What the numbers were measured on: CPU model, cores, the instruction sets that matter to
PyTorch on a CPU, memory, library versions."""

from __future__ import annotations

import os
import platform
import re
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
    """Native bf16 arithmetic (AVX512-BF16 or AMX). Without it PyTorch emulates bf16 and is
    far slower than float32, so bf16 is not worth measuring."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


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
