"""Free ports for the processes a stack or a test starts: distinct however the kernel picks
them. A stand-in kernel answers every bind to port 0 with the lowest port not bound at that
moment, as the real one does from a random place in its range when the free ports lie in a few
gaps (a busy machine): a port asked for and let go is the next one handed out."""

from __future__ import annotations

import re
import types

import pytest

from devstack import ports
from devstack.run import processes, stack_ports
from divescore.settings import load

FIRST = 40000


class Kernel:
    def __init__(self, first: int = FIRST):
        self.first = first
        self.bound: set[int] = set()

    def socket(self, *args):
        return Socket(self)


class Socket:
    def __init__(self, kernel: Kernel):
        self.kernel, self.port = kernel, None

    def bind(self, address):
        port = address[1]
        if port == 0:
            port = self.kernel.first
            while port in self.kernel.bound:
                port += 1
        elif port in self.kernel.bound:
            raise OSError(98, "Address already in use")
        self.kernel.bound.add(port)
        self.port = port

    def getsockname(self):
        return ("127.0.0.1", self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kernel.bound.discard(self.port)


@pytest.fixture
def kernel(monkeypatch):
    kernel = Kernel()
    monkeypatch.setattr(ports, "socket", types.SimpleNamespace(socket=kernel.socket))
    monkeypatch.setattr(ports, "_handed_out", set())
    return kernel


def test_ports_asked_for_together_are_distinct(kernel):
    assert len(set(ports.free_ports(4))) == 4


def test_a_port_handed_out_is_not_handed_out_again(kernel):
    first = ports.free_port()
    assert ports.free_port() != first
    assert first not in ports.free_ports(3)


def test_consecutive_ports_skip_a_run_with_a_port_in_use(kernel):
    kernel.bound.add(FIRST + 2)  # something else listens there
    chosen = ports.free_ports(3, consecutive=True)
    assert chosen == list(range(chosen[0], chosen[0] + 3))
    assert FIRST + 2 not in chosen


def test_the_runtimes_runtime_api_ports_are_their_own(kernel):
    # the stack's own ports are not bound yet when its commands are made: the kernel would hand
    # out the web port first
    settings = load({}, runtimes=3, web_port=FIRST, emulator_port=FIRST + 1)
    table = processes(settings)
    api = [int(re.search(r"--runtime-api-address 127\.0\.0\.1:(\d+)", table[f"function-{i}"][0]).group(1))
           for i in range(3)]
    assert len(set(api)) == 3
    assert not set(api) & {port for port, _ in stack_ports(settings).values()}
