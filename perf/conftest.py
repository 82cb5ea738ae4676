"""Benchmark session: prints the seed-claim verdicts and the targets after the sweep."""

from mixology import perf_report


def pytest_terminal_summary(terminalreporter):
    if perf_report.SESSION_RESULTS:
        terminalreporter.write_sep("=", "seed claims and targets (this run)")
        terminalreporter.write_line(perf_report.report(perf_report.SESSION_RESULTS))
