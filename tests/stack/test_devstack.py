"""`make run`: the native stack starts, refuses bad settings in one line, and stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.helpers import ROOT, descendants, free_port, pid_alive, wait_until

pytestmark = pytest.mark.stack


def run_devstack(env_overrides, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIVESCORE_")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "devstack.run"], env=env, cwd=ROOT,
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


def time_wait_ports() -> set[int]:
    """Local ports of IPv4 TCP sockets in TIME_WAIT (state 06 in /proc/net/tcp)."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "06":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_stack_starts_again_at_once_on_the_ports_it_just_left(make_stack):
    first = make_stack()
    ports = {k: v for k, v in first.env_overrides.items() if k.endswith("_PORT")}
    for url in (first.presign_url, first.score_url, first.web_url):
        # The server closes first, so the socket waits out TIME_WAIT on the server's port.
        assert requests.get(f"{url}/healthz", headers={"Connection": "close"}, timeout=5).status_code == 200
    assert first.stop() == 0
    assert time_wait_ports() & {int(p) for p in ports.values()}, "nothing in TIME_WAIT: the test would prove nothing"

    second = make_stack(ports)

    for url in (second.presign_url, second.score_url, second.web_url):
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
