"""The supervised worker's child: ``python -m workers.child FD [--burst] [--verbose]``.

Started by :class:`workers.supervisor.Supervisor` (never by hand): FD is the write end
of the pipe on which it reports its jobs and beats.
"""

from __future__ import annotations

import logging
import sys

from digitizer.config import get_settings
from workers.supervisor import ChildLink
from workers.worker import run_worker


def main(argv: list[str]) -> int:
    """Run jobs in this process, reporting to the supervisor; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO if "--verbose" in argv else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    link = ChildLink(int(argv[0]))
    run_worker(get_settings(), burst="--burst" in argv, mode="inline", link=link)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
