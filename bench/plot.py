"""``results.png``: the ratios against their targets, the latencies, the cold start and the
throughput, in one figure drawn from ``results.json``'s content."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.machine import one_line

MET, MISSED, INFO = "#2e7d32", "#c62828", "#607d8b"
SHORT = {
    "model_vs_matmul_fp32": "C3D fp32 / dense reference",
    "model_vs_matmul_fp32_cl3d": "C3D fp32 channels-last / dense reference",
    "model_vs_matmul_function": "C3D as the function runs it / reference",
    "bf16_error_vs_spread": "bf16 score change / score spread",
    "pipeline_overhead_720p": "720p pipeline overhead / model",
    "pipeline_overhead_720p_function": "720p overhead in the function / model",
    "big_file_vs_decode": "large file: function / ffmpeg decode",
    "big_file_bytes_read": "large file: bytes read / size",
    "phone_file_vs_decode": "phone file (keyframe 1 s): function / decode",
    "phone_file_bytes_read": "phone file: bytes read / size",
    "cold_start_vs_import_torch": "cold start / import torch",
    "upload_post_vs_raw": "upload: raw PUT / pre-signed POST",
    "upload_multipart_vs_raw": "upload: raw PUT / multipart",
    "cold_first_job_vs_warm": "(cold start + first job) / warm job",
}


def _by_key(results: dict) -> dict[str, dict]:
    return {m["key"]: m for m in results["metrics"]}


def _color(metric: dict) -> str:
    return {True: MET, False: MISSED}.get(metric["met"], INFO)


def _target_value(metric: dict) -> float | None:
    return float(metric["target"].split()[-1]) if metric.get("target") else None


def _bars(ax, metrics: list[dict], title: str, unit: str, log: bool = False) -> None:
    shown = [m for m in metrics if m["value"] is not None]
    if not shown:
        ax.set_title(f"{title}\n(not measured)")
        ax.axis("off")
        return
    labels = [SHORT.get(m["key"], m["name"].split(":")[0]) for m in shown]
    values = [m["value"] for m in shown]
    y = range(len(shown))
    ax.barh(y, values, color=[_color(m) for m in shown])
    for i, m in enumerate(shown):
        target = _target_value(m)
        if target is not None:
            ax.plot([target, target], [i - 0.42, i + 0.42], color="black", linewidth=2)
        ax.text(m["value"], i, f" {m['value']:.3g}", va="center", fontsize=8)
    if not log:
        targets = [t for t in map(_target_value, shown) if t is not None]
        ax.set_xlim(0, max(values + targets) * 1.15)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)


def draw(results: dict, path: Path) -> None:
    m = _by_key(results)
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    ratio_keys = [
        "model_vs_matmul_fp32",
        "model_vs_matmul_fp32_cl3d",
        "model_vs_matmul_function",
        "bf16_error_vs_spread",
        "pipeline_overhead_720p",
        "pipeline_overhead_720p_function",
        "big_file_vs_decode",
        "big_file_bytes_read",
        "phone_file_vs_decode",
        "phone_file_bytes_read",
        "upload_post_vs_raw",
        "upload_multipart_vs_raw",
        "cold_first_job_vs_warm",
        "cold_start_vs_import_torch",
    ]
    _bars(
        axes[0][0],
        [m[k] for k in ratio_keys if k in m],
        "Ratios measured in the same run (| = target)",
        "ratio",
    )

    latency_keys = [
        "event_latency_p50",
        "event_latency_p95",
        "result_latency_p50",
        "result_latency_p95",
        "result_latency_5s_poll_p50",
    ]
    _bars(
        axes[0][1],
        [m[k] for k in latency_keys if k in m],
        "Latencies (| = target)",
        "ms, log scale",
        log=True,
    )

    ax = axes[1][0]
    function = results.get("series", {}).get("function", {})
    breakdown = function.get("cold_breakdown")
    if breakdown:
        steps = [
            ("python + import torch", breakdown["import_torch"]),
            ("+ handler: clients, weights", breakdown["import_handler"] - breakdown["import_torch"]),
            ("+ first forward (1 clip)", breakdown["first_forward"] - breakdown["import_handler"]),
        ]
        left = 0.0
        for (label, seconds), color in zip(steps, ("#90caf9", "#42a5f5", "#1565c0"), strict=True):
            ax.barh(0, seconds, left=left, color=color, label=label)
            left += seconds
        if "ready_s" in function:
            ax.barh(1, function["ready_s"], color=_color(m["cold_start_vs_import_torch"]), label="RIE: start → ready")
        if "ready_target_s" in function:
            ax.axvline(function["ready_target_s"], color="black", linestyle="--", linewidth=1,
                       label="target: import torch + 0.5 s")
        ax.set_yticks([0, 1], ["plain python", "fresh runtime"], fontsize=8)
        ax.set_xlabel("seconds after the process starts")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("Cold start", fontsize=10)
    else:
        ax.set_title("Cold start\n(not measured)")
        ax.axis("off")

    ax = axes[1][1]
    batches = results.get("series", {}).get("throughput") or []
    if batches:
        runtimes = [b["runtimes"] for b in batches]
        rates = [b["jobs_per_minute"] for b in batches]
        ax.plot(runtimes, rates, marker="o", color="#1565c0", label="measured (threads = cores ÷ runtimes)")
        ax.plot(
            runtimes,
            [rates[0] * n / runtimes[0] for n in runtimes],
            linestyle="--",
            color=INFO,
            label="linear scaling",
        )
        for b in batches:
            ax.annotate(
                f"{b['threads']} thr",
                (b["runtimes"], b["jobs_per_minute"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, -10),
            )
        oversubscribed = results["series"].get("throughput_oversubscribed")
        if oversubscribed:
            ax.scatter(
                [oversubscribed["runtimes"]],
                [oversubscribed["jobs_per_minute"]],
                marker="s",
                color="#ef6c00",
                zorder=3,
                label=f"{oversubscribed['runtimes']} runtimes, {oversubscribed['threads']} torch threads each",
            )
        cores = results["machine"]["cores"]
        ax.axvline(cores, color="black", linestyle=":", linewidth=1, label=f"{cores} cores")
        ax.set_xticks(runtimes)
        ax.set_xlabel("runtimes")
        ax.set_ylabel("jobs per minute")
        ax.legend(fontsize=8)
        ax.set_title("Throughput, queued short clips", fontsize=10)
    else:
        ax.set_title("Throughput\n(not measured)")
        ax.axis("off")

    fig.suptitle(f"divescore benchmark ({results['mode']}): {one_line(results['machine'])}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
