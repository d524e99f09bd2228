"""Run by :func:`bench.function.cold_start_breakdown` in a fresh ``python``: the function's
start, step by step. Prints one JSON line of Unix times, one per step."""

import json
import time

stamps = {"interpreter": time.time()}

import torch  # noqa: E402, F401  (the point is to time these imports)

stamps["import_torch"] = time.time()

from inference import handler  # noqa: E402  (settings, AWS clients, weights: the cold start)

stamps["import_handler"] = time.time()

import numpy as np  # noqa: E402  (loaded by torch already)

frames = [np.zeros((112, 112, 3), np.uint8) for _ in range(16)]
handler.services.scorer.clip_features([frames])
stamps["first_forward"] = time.time()
handler.services.scorer.clip_features([frames])
stamps["second_forward"] = time.time()
print(json.dumps(stamps))
