"""Every property can fail: the spec rejects every mutant, and every property rejects one."""

import os

import pytest

import spec
from mixology import registry, runner

DEVICE = os.environ["MIXOLOGY_DEVICE"]
MUTANTS = registry.mutants(device=DEVICE)


@pytest.fixture(scope="module")
def kill_matrix():
    return {(m.op, m.name): runner.rejects(m, device=DEVICE, stop_at_first=False)
            for m in MUTANTS}


@pytest.mark.parametrize("m", MUTANTS, ids=[f"{m.op}-{m.name}" for m in MUTANTS])
def test_spec_rejects_mutant(m, kill_matrix):
    assert kill_matrix[(m.op, m.name)], f"mutant {m.name} ({m.doc}) passes every property"


def test_every_property_rejects_some_mutant(kill_matrix):
    killed = {(op, p) for (op, _), props in kill_matrix.items() for p in props}
    idle = [f"{p.op}/{p.name}" for p in spec.properties() if (p.op, p.name) not in killed]
    assert not idle, f"properties no mutant can fail (suspect): {idle}"


def test_the_seed_designs_permute_back_mixer_is_the_identity():
    """The trap the harness exists to catch: permuting back mixes nothing."""
    import torch

    from mixology.ops.token_mix.mutants import permute_back

    x = torch.randn(2, 8, 32)
    assert torch.equal(permute_back(x, 8), x)
    assert not torch.equal(registry.get("token_mix").fn(x, 8), x)


def test_mutants_are_documented():
    for m in MUTANTS:
        assert m.doc, f"mutant {m.name} has no docstring saying what bug it models"
