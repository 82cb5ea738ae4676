"""The spec in a user's own test suite.

    from mixology.testing import assert_satisfies_spec, spec_tests

    def test_my_norm():
        assert_satisfies_spec("rms_norm", my_rms_norm)     # one test, the whole spec

    test_my_norm_spec = spec_tests("rms_norm", my_rms_norm)  # one test per property

Or without writing a test: ``pytest --mixology-candidate rms_norm=pkg.mod:my_rms_norm``
(the pytest plugin, mixology/verify/pytest_plugin.py).
"""

from __future__ import annotations

from collections.abc import Callable

from mixology import spec
from mixology.verify.api import Report, check


def assert_satisfies_spec(op: str, fn: Callable | str, **kw) -> Report:
    """mixology.check(op, fn, **kw); raises AssertionError(report) unless it passes."""
    report = check(op, fn, **kw)
    if not report.ok:
        raise AssertionError(str(report))
    return report


def spec_tests(op: str, fn: Callable | str, **kw):
    """A pytest test function parametrized over every property of ``op``: assign it to a
    ``test_...`` name in a test module, and each property is its own test item."""
    # pytest is optional: assert_satisfies_spec runs without it
    import pytest


    def test_property(prop):
        report = check(op, fn, properties=[prop], **kw)
        if not report.ok:
            pytest.fail(str(report), pytrace=False)

    names = [p.name for p in spec.properties(op)]
    return pytest.mark.parametrize("prop", names, ids=names)(test_property)
