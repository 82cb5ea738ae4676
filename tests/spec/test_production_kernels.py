"""A production kernel library, checked as it ships: Liger-Kernel's Triton kernels through
small adapters (tests/support/liger.py), on its own dtypes, on CPU through Triton's interpreter
with mixology's shims. Each expected failure is a real finding (docs/kernels.md); every other
property must pass. Skipped, with the reason, where liger-kernel is not installed."""

import os

import pytest

import mixology

pytest.importorskip("liger_kernel", reason="liger-kernel is not installed (tox installs it)")
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("Liger's kernels run on CPU only through TRITON_INTERPRET=1",
                allow_module_level=True)

from tests.support import liger  # noqa: E402

# op -> (sizes, {property: what the failure shows})
FINDINGS = {
    "rms_norm": ("all", {
        # in_place=True by default: the backward writes dx into the caller's dy, so a second
        # backward reads dx as its upstream gradient
        "inputs_left_unmodified": "the backward wrote into the caller's upstream gradient",
        "reentrant_backward": "not reentrant",
    }),
    "swiglu": ("small", {
        # the backward overwrites the saved gate activations in place
        "reentrant_backward": "not reentrant",
    }),
}


@pytest.mark.parametrize("op", FINDINGS)
def test_liger_kernel_on_its_dtypes(op):
    sizes, findings = FINDINGS[op]
    report = mixology.check(op, getattr(liger, op), profile="ci", device="cpu", sizes=sizes,
                            dtypes=liger.DTYPES)
    failed = {o.prop: o.error for o in report.failed}
    assert set(failed) == set(findings), str(report)
    for prop, shows in findings.items():
        assert shows in failed[prop], failed[prop]
    # float64-only properties are not checked, but listed; the stand-in ran and passed
    assert report.skipped and all("float64 only" in o.skipped for o in report.skipped)
    assert "gradients_against_float64" in {o.prop for o in report.passed}
