"""`make run`: the native stack starts, refuses bad settings in one line, and stops cleanly."""

import os
import signal
import socket
import subprocess
import sys

import requests

from tests.helpers import ROOT, descendants, free_port, pid_alive, wait_until


def run_devstack(env_overrides, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIVESCORE_")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "divescore.devstack"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_an_unknown_setting_stops_start_up_with_one_line():
    result = run_devstack({"DIVESCORE_WEB_PROT": "8000"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "divescore: DIVESCORE_WEB_PROT: unknown setting (see docs/settings.md for the list)"
    ]


def test_a_non_number_stops_start_up_with_one_line():
    result = run_devstack({"DIVESCORE_RUNTIMES": "two"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["divescore: DIVESCORE_RUNTIMES: expected a whole number, got 'two'"]


def test_a_port_in_use_stops_start_up_with_one_line_naming_the_setting():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_devstack({
            "DIVESCORE_EMULATOR_PORT": str(free_port()), "DIVESCORE_WEB_PORT": str(free_port()),
            "DIVESCORE_PRESIGN_PORT": str(free_port()), "DIVESCORE_RUNTIME_PORT": str(free_port()),
            "DIVESCORE_SCORE_PORT": str(port),
        })
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"divescore: DIVESCORE_SCORE_PORT: port {port} on 127.0.0.1 is in use")


def test_the_stack_serves_and_ctrl_c_stops_every_process(make_stack):
    stack = make_stack(runtimes=2)
    assert set(stack.pids) >= {"emulator", "function-0", "function-1", "dispatcher", "presign", "score", "web"}
    for url in (stack.presign_url, stack.score_url, stack.web_url):
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    assert f"web page      {stack.web_url}/" in stack.output()
    # Every process and every child they started (gunicorn workers, runtimes under the RIE).
    everything = {stack.process.pid, *descendants(stack.process.pid)}
    assert len(everything) > len(stack.pids)

    stack.process.send_signal(signal.SIGINT)
    stack.process.wait(30)

    wait_until(lambda: not any(pid_alive(p) for p in everything), 15, what="every process to exit")
    assert stack.process.returncode == 0
