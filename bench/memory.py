"""Memory of process trees for the benchmarks: PSS, so that pages a forked process
shares with its parent count once, sampled until stopped and kept at the peak."""

from __future__ import annotations

import threading

from fixtures.stack import pss_kib as pss_of
from fixtures.stack import tree


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 when it is gone)."""
    return pss_of([pid])


def tree_pss_kib(root: int) -> int:
    """PSS of a process and all its descendants, in KiB."""
    return pss_of(tree(root))


class PeakSampler(threading.Thread):
    """Samples the PSS of process trees until stopped; keeps the peak of each."""

    def __init__(self, pids: list[int], every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids, self.every_s = pids, every_s
        self.peaks = dict.fromkeys(pids, 0)
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], tree_pss_kib(pid))
            self.stop_event.wait(self.every_s)

    def stop(self) -> dict[int, int]:
        """Stop sampling; the peak PSS (KiB) of each tree."""
        self.stop_event.set()
        self.join()
        return self.peaks
