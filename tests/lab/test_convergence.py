"""Convergence, as kernel libraries test it: a tiny model trained 50 steps on each
implementation follows the float64 reference's loss curve within a tolerance derived from the
float32 reference's own drift; a block that computes the forward right and trains wrong does
not."""

import os

import pytest

from mixology import registry
from mixology.lab import model
from mixology.ops import mutants
from mixology.registry import patched
from mixology.spec.lab import follows_the_reference_loss_curve

DEVICE = os.environ["MIXOLOGY_DEVICE"]
IMPLS = [i for i in registry.implementations("transformer_block", DEVICE) if i != "reference"]


@pytest.mark.parametrize("impl", IMPLS)
def test_every_implementation_follows_the_reference_loss_curve(impl):
    follows_the_reference_loss_curve(impl)


@pytest.mark.parametrize("name", ["block_detached_norm_weight", "block_output_bias_ignored"])
def test_a_block_that_trains_wrong_leaves_the_curve(name):
    """Both mutants give the reference's forward at init (norm weight 1, bias 0): only
    training shows them."""
    (mutant,) = [m for m in mutants("transformer_block", DEVICE) if m.name == name]
    original = model.make_block

    def make_block(c, layer, impl=None, **kw):
        return original(c, layer, impl=mutant.fn if c.impl == "native" else impl, **kw)

    with patched(model, make_block=make_block), pytest.raises(AssertionError, match="native"):
        follows_the_reference_loss_curve("native")
