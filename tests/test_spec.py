"""Every property of the spec on every implementation available on the device under test."""

import os

import pytest

import spec
from mixology import registry, runner

DEVICE = os.environ["MIXOLOGY_DEVICE"]
CASES = [(p, impl) for op in registry.ops() for p in spec.properties(op)
         for impl in registry.implementations(op, DEVICE)]


@pytest.mark.parametrize(("prop", "impl"), CASES,
                         ids=[f"{p.op}-{p.name}-{impl}" for p, impl in CASES])
def test_property(prop, impl):
    registered = registry.get(prop.op, impl)
    out = runner.check(prop, registered.fn, impl, device=DEVICE, cost=registered.cost)
    assert out.ok, (f"{out.error}\ncounterexample: {out.counterexample}\n"
                    f"replay: {out.replay}")


def test_every_registered_implementation_runs_here_unless_it_needs_triton():
    for op in registry.ops():
        registered = registry.OPS[op].impls
        expected = {name for name, impl in registered.items()
                    if impl.needs != "triton" or _triton_runs()}
        assert set(registry.implementations(op, DEVICE)) == expected, op
        assert "reference" in expected


def _triton_runs():
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return False
    return DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
