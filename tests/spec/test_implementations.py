"""Every property of the spec on every implementation available on the device under test, in
each size tier of ``$MIXOLOGY_SIZES`` (default all: small, then kernel for the properties
whose cases have a kernel tier)."""

import os

import pytest
import torch

from mixology import registry, spec
from mixology.spec.attention import AttnCase
from mixology.spec.strategies import tiers
from mixology.verify import runner

DEVICE = os.environ["MIXOLOGY_DEVICE"]
CASES = [(p, impl, tier) for op in registry.ops() for p in spec.properties(op)
         for impl in registry.implementations(op, DEVICE)
         for tier in tiers() if tier == "small" or p.kernel]


@pytest.mark.parametrize(("prop", "impl", "tier"), CASES,
                         ids=[f"{p.op}-{p.name}-{impl}-{tier}" for p, impl, tier in CASES])
def test_property(prop, impl, tier):
    registered = registry.get(prop.op, impl)
    out = runner.check(prop, registered.fn, impl, device=DEVICE, cost=registered.cost,
                       sizes=tier)
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


# Cases `thorough` drew (tests/support/acceptance.py) where the spec rejected a correct implementation,
# replayed on every implementation here: each must pass.
FOUND = [
    # a flat bound of 8 eps on a row's sum: the float64 reference itself is 12 eps off here.
    ("softmax_attention", "attn_rows_sum_to_one",
     AttnCase(B=1, H=1, T=4093, d=1, dv=2, dtype=torch.float64, layout="contiguous", seed=54245,
              causal=True, alibi=False, scale=10.0)),
]


@pytest.mark.parametrize(("op", "name", "case"), FOUND, ids=[f"{o}-{n}" for o, n, _ in FOUND])
def test_cases_thorough_found_pass_on_every_implementation(op, name, case):
    spec.load()
    prop = spec.PROPERTIES[(op, name)]
    for impl in registry.implementations(op, DEVICE):
        prop.fn(registry.get(op, impl).fn, case)
