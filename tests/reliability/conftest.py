"""Prints the fault matrix counts in the terminal summary (they are also written as JSON)."""

from __future__ import annotations

import json

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.reliability import test_fault_matrix

    if not test_fault_matrix.RESULTS:
        return
    columns = [
        "accepted", "refused_503", "completed", "failed", "stuck", "lost", "duplicates",
        "recovered", "seconds",
    ]  # fmt: skip
    terminalreporter.section("fault matrix")
    terminalreporter.write_line(f"{'fault':<26}" + "".join(f"{c:>12}" for c in columns))
    for fault, row in test_fault_matrix.RESULTS.items():
        terminalreporter.write_line(
            f"{fault:<26}" + "".join(f"{row.get(c, ''):>12}" for c in columns)
        )
        if row.get("extra"):
            terminalreporter.write_line(f"{'':<26}{json.dumps(row['extra'], ensure_ascii=False)}")
