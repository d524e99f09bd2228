"""How much each measurement does: the full run (about 15 minutes on 2 cores) and the quick
smoke run (a couple of minutes; checks that the harness works, its numbers mean little)."""

from __future__ import annotations

import dataclasses

MB = 1000 * 1000


@dataclasses.dataclass(frozen=True)
class Plan:
    quick: bool
    # 1. model throughput
    matmul_size: int = 4096
    matmul_repeats: int = 3  # per round of the model runs (cheap: about a second each)
    model_clips: int = 6  # the paper's 6 clips of 16 frames (96 frames)
    model_repeats: int = 3
    bf16_clips: int = 24  # clips of a decoded video scored in float32 and in emulated bf16
    # 2. pipeline overhead and 7. memory: the 5 s 720p clip and the large 1080p file
    clip_seconds: float = 5.0
    big_seconds: float = 95.0  # at 16 Mbit/s: about 190 MB, under the 200 MB upload limit
    big_bitrate: str = "16M"
    phone_gop: int = 25  # the second large file: a keyframe every second, as phones record
    decode_repeats: int = 2
    pipeline_repeats: int = 2
    large_file_jobs: int = 3  # jobs per large file through the function; the median one is reported
    # 4. upload
    upload_bytes: int = 200 * MB
    upload_repeats: int = 2
    # 5. and 6. latencies
    event_jobs: int = 20
    result_trials: int = 50
    # 8. throughput: queued jobs of the short clip, for each number of runtimes
    throughput_jobs: int = 20
    throughput_runtimes: tuple[int, ...] = (1, 2, 4)
    throughput_clip_seconds: float = 4.0  # 100 frames: about one dive, six distinct clips
    # 9. the function image: Lambda memory settings run with their CPU share (1,769 MB: one vCPU)
    image_memory_mb: tuple[int, ...] = (1769, 2048, 3008, 3538)
    image_warm_jobs: int = 2


FULL = Plan(quick=False)

QUICK = Plan(
    quick=True,
    matmul_repeats=1,
    model_clips=1,
    model_repeats=1,
    bf16_clips=4,
    # 16 frames: six identical clips, computed once; the same code paths at a fraction of the work
    clip_seconds=0.64,
    big_seconds=0.64,
    decode_repeats=1,
    pipeline_repeats=1,
    large_file_jobs=1,
    upload_bytes=20 * MB,
    upload_repeats=1,
    event_jobs=3,
    result_trials=5,
    throughput_jobs=3,
    throughput_runtimes=(1, 2),
    throughput_clip_seconds=0.64,  # 16 frames: one clip, computed once
    image_memory_mb=(1769, 3538),
    image_warm_jobs=1,
)
