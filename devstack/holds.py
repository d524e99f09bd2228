"""Holds: a test stops the inference function at a named point of one job's work, acts while
it is stopped there (kills the runtime, cancels the job, cuts a connection), then lets it go
on. A test that interrupts work in flight holds that work instead of racing it.

The protocol is files in one folder (``DEVSTACK_HOLD_DIR``) that the test and the function's
runtime share. ``NAME`` is ``{job_id}.{attempt}.{point}``: ``job_id`` is a job's id or ``next`` (the next
job to get there, for a test that does not create the job itself); ``attempt`` counts the
job's claims (1, 2, ...) or is ``any``; ``point`` is ``start`` (claimed, before the video is opened) or
``batchK`` (K clip batches computed, before the progress that follows is written).

==================  =============  ================================================
file                written by     meaning
==================  =============  ================================================
``NAME.arm``        the test       hold this job at this point
``NAME.taken``      the function   the arm, taken (a rename: one runtime takes it)
``NAME.reached``    the function   JSON: job, attempt, point, the runtime's pid
``NAME.release``    the test       go on
==================  =============  ================================================

A hold lasts until its release, and never past the invocation's remaining time less a margin:
a forgotten hold ends before the function's timeout, so the queue never hands the message to
another runtime while it is held. Stdlib only: the runtime and the tests both import it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

NEXT_JOB = "next"
HOLD_DIR_ENV = "DEVSTACK_HOLD_DIR"  # not DIVESCORE_*: the settings refuse an unknown one
MARGIN_SECONDS = 3.0
POLL_SECONDS = 0.02


def _name(job_id: str, attempt: int | str, point: str) -> str:
    return f"{job_id}.{attempt}.{point}"


class Holds:
    """One folder of holds: the test's side (:meth:`arm`) and the function's (:meth:`reach`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- the test's side ----------------------------------------------------------------

    def arm(self, job_id: str, point: str, attempt: int | str = "any") -> Hold:
        hold = Hold(self.root, _name(job_id, attempt, point))
        (self.root / f"{hold.name}.arm").touch()
        return hold

    def release_all(self) -> None:
        """Let every held or armed point go (a stack's stop, so no runtime stays blocked)."""
        for path in self.root.glob("*.arm"):
            path.unlink(missing_ok=True)
        for path in self.root.glob("*.taken"):
            (self.root / f"{path.name.removesuffix('.taken')}.release").touch()

    # -- the function's side ------------------------------------------------------------

    def armed_for(self, job_id: str) -> bool:
        return any(self.root.glob(f"{job_id}.*.arm")) or any(self.root.glob(f"{NEXT_JOB}.*.arm"))

    def reach(self, job_id: str, attempt: int, point: str, *, deadline: float, at_least: float = 0.0) -> bool:
        """Hold here if the test armed this point; whether it held. ``deadline`` is the
        invocation's end on the monotonic clock; the hold lasts at least ``at_least`` seconds."""
        for name in (_name(job_id, attempt, point), _name(job_id, "any", point), _name(NEXT_JOB, "any", point)):
            try:
                os.rename(self.root / f"{name}.arm", self.root / f"{name}.taken")
                break
            except FileNotFoundError:
                continue
        else:
            return False
        started = time.monotonic()
        marker = {"job_id": job_id, "attempt": attempt, "point": point, "pid": os.getpid()}
        temporary = self.root / f"{name}.reached.tmp"
        temporary.write_text(json.dumps(marker))
        temporary.replace(self.root / f"{name}.reached")
        release = self.root / f"{name}.release"
        while not release.exists() and time.monotonic() < deadline - MARGIN_SECONDS:
            time.sleep(POLL_SECONDS)
        time.sleep(max(0.0, at_least - (time.monotonic() - started)))
        return True


class Hold:
    """One armed point, as the test sees it; leaving the ``with`` block releases it."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = root, name

    def reached(self, timeout: float) -> dict:
        """Wait until the function holds here; the marker it wrote (``pid``: its runtime)."""
        path = self.root / f"{self.name}.reached"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the function did not reach the hold {self.name} within {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        return json.loads(path.read_text())

    def release(self) -> None:
        (self.root / f"{self.name}.arm").unlink(missing_ok=True)
        (self.root / f"{self.name}.release").touch()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
