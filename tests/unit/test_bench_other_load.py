"""bench/machine.py's count of the cores other processes kept busy: the function containers the
image section starts run outside the benchmark's process tree, and still are its own work."""

from __future__ import annotations

from bench import machine

OURS = "3f" * 32  # a full container id, as `docker run --detach` prints it
THEIRS = "a1" * 32


def _process(proc, pid: str, cgroup: str | None) -> None:
    (proc / pid).mkdir()
    if cgroup is not None:
        (proc / pid / "cgroup").write_text(cgroup)


def test_the_processes_of_an_adopted_container_are_found_by_their_control_groups(tmp_path):
    _process(tmp_path, "101", f"4:memory:/docker/{OURS}\n1:cpu:/docker/{OURS}\n0::/\n")
    _process(tmp_path, "102", f"0::/system.slice/docker-{OURS}.scope\n")
    _process(tmp_path, "202", f"4:memory:/docker/{THEIRS}\n")
    _process(tmp_path, "303", "4:memory:/\n0::/\n")
    _process(tmp_path, "404", None)  # ended while the folder was read
    _process(tmp_path, "self", f"0::/docker/{OURS}\n")

    assert sorted(machine._in_containers({OURS}, tmp_path)) == [101, 102]
    assert sorted(machine._in_containers({OURS, THEIRS}, tmp_path)) == [101, 102, 202]
    assert machine._in_containers(set(), tmp_path) == []


def test_an_empty_id_adopts_nothing_as_it_would_match_every_process(monkeypatch):
    monkeypatch.setattr(machine, "_adopted_containers", set())
    machine.adopt_container("\n")
    assert machine._adopted_containers == set()
    machine.adopt_container(f"{OURS}\n")
    assert machine._adopted_containers == {OURS}
