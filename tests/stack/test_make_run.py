"""`make run` as a newcomer meets it: up, one video scored, Ctrl-C, and a terminal that holds
what matters (the banner, the job) and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest
import requests

from tests.support.helpers import ROOT, free_ports, wait_until
from tests.support.stack_support import post_upload, small_clip

pytestmark = pytest.mark.stack


def test_make_run_scores_a_video_and_stops_on_ctrl_c_quietly(tmp_path):
    web, presign, score, emulator, runtime = free_ports(5)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DIVESCORE_", "AWS_"))},
           "DIVESCORE_WEB_PORT": str(web), "DIVESCORE_PRESIGN_PORT": str(presign),
           "DIVESCORE_SCORE_PORT": str(score), "DIVESCORE_EMULATOR_PORT": str(emulator),
           "DIVESCORE_RUNTIME_PORT": str(runtime)}
    make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(make.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line.strip() == "divescore ready" for line in lines), 180,
                   what="make run to say it is ready")
        path = small_clip(tmp_path / "dive.mp4")
        job = requests.post(f"http://127.0.0.1:{presign}/v1/jobs", json={
            "filename": path.name, "content_type": "video/mp4", "size": path.stat().st_size}, timeout=30).json()
        post_upload(job, path)
        final = wait_until(lambda: (body := requests.get(f"http://127.0.0.1:{score}/v1/jobs/{job['job_id']}",
                                                         params={"wait": 20}, timeout=60).json())
                           ["status"] in ("succeeded", "failed") and body, 180, what="the job to end")
        assert final["status"] == "succeeded", final
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole group
        try:
            make.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        reader.join(10)

    output = "".join(lines)
    assert make.returncode in (0, -signal.SIGINT), output[-3000:]  # make ends as Ctrl-C ended it
    assert "Traceback" not in output, output
    assert len(lines) < 100, f"{len(lines)} lines:\n{output}"
    banner = next(i for i, line in enumerate(lines) if "divescore is running" in line)
    assert f"http://127.0.0.1:{web}/" in "".join(lines[banner:banner + 3])
