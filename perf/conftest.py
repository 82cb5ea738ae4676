"""Benchmark session: collects each point's figures and prints the seed-claim verdicts and
the targets after the sweep (perf/claims.py)."""

import claims
import pytest

RESULTS: list[dict] = []  # each point's extra_info, in the order measured


@pytest.fixture(scope="session")
def session_results() -> list[dict]:
    return RESULTS


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.write_sep("=", "seed claims and targets (this run)")
        terminalreporter.write_line(claims.report(RESULTS))
