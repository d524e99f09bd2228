"""Free loopback ports for processes about to start: the tests' stacks and runtimes, and the
Runtime API addresses of the stack's own runtimes.

A socket bound to port 0 gets the first free port the kernel finds from a random place in its
range, so two asks in a row can return the same port, more often on a busy machine, where the
free ports lie in a few gaps. So the ports asked for together are held open until all of them
are chosen, and a process never hands out the same port twice.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Collection

HOST = "127.0.0.1"
_handed_out: set[int] = set()


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int, consecutive: bool = False, besides: Collection[int] = ()) -> list[int]:
    """``n`` distinct ports free on the loopback now (``consecutive``: ``p, p + 1, ...``), none
    of them in ``besides`` or handed out by this process before."""
    taken = _handed_out | set(besides)
    size = n if consecutive else 1  # ports chosen in one go
    chosen: list[int] = []
    with contextlib.ExitStack() as held:
        def hold(port: int) -> int | None:
            sock = held.enter_context(socket.socket())
            try:
                sock.bind((HOST, port))
            except OSError:
                if not port:
                    raise  # no free port left at all
                return None
            return sock.getsockname()[1]

        while len(chosen) < n:
            start = hold(0)
            if start in taken:
                continue
            run = [start]
            while len(run) < size:
                port = start + len(run)
                if port > 65535 or port in taken or hold(port) is None:
                    break
                run.append(port)
            if len(run) == size:
                chosen += run
                taken.update(run)
    _handed_out.update(chosen)
    return chosen
