"""Benchmark session: prints the seed-claim verdicts and the targets after the sweep."""

from mixology.bench import history


def pytest_terminal_summary(terminalreporter):
    if history.SESSION_RESULTS:
        terminalreporter.write_sep("=", "seed claims and targets (this run)")
        terminalreporter.write_line(history.report(history.SESSION_RESULTS))
