"""CPU time of process groups for the benchmarks: where a measured window's CPU went.

A benchmark on a small machine shares its cores between the service under test, its
database and the load generator; a latency figure alone does not say which of them to
make cheaper. :func:`cpu_seconds` reads ``utime + stime`` of every process from
``/proc`` and sums it per group; two snapshots around the measured window give each
group's share (CPU seconds, and per call when divided by the calls made).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fixtures.stack import proc_stat, tree

_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[str, float] | None:
    """(command name, CPU seconds used so far) of a live process, or None."""
    stat = proc_stat(pid)
    if stat is None:
        return None
    name, fields = stat
    return name, (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_seconds(groups: dict[str, Callable[[int, str], bool]]) -> dict[str, float]:
    """CPU seconds used so far by the processes of each group.

    ``groups`` maps a group name to a predicate on (pid, command name); a process
    counts in the first group that takes it; the rest go to ``"other"``. Processes that
    ended before the snapshot are not counted (their time is lost to both snapshots).
    """
    totals = dict.fromkeys([*groups, "other"], 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        found = _proc_cpu(pid)
        if found is None:
            continue
        name, seconds = found
        group = next((g for g, takes in groups.items() if takes(pid, name)), "other")
        totals[group] += seconds
    return totals


def tree_member(root: int) -> Callable[[int, str], bool]:
    """A predicate: is the pid ``root`` or one of its descendants (taken once, now)."""
    members = set(tree(root))
    return lambda pid, _name: pid in members


def named(prefix: str) -> Callable[[int, str], bool]:
    """A predicate: does the command name start with ``prefix``."""
    return lambda _pid, name: name.startswith(prefix)


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by processes and all their descendants (now)."""
    members = {pid for root in roots for pid in tree(root)}
    return sum(found[1] for pid in members if (found := _proc_cpu(pid)) is not None)


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots."""
    return {group: round(after[group] - before.get(group, 0.0), 2) for group in after}
