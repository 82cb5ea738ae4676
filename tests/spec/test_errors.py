"""Bad input gets the *same* error, word for word, from every implementation."""

import os

import pytest

from mixology import registry
from mixology.spec.attention import bad_attention_inputs
from mixology.spec.blocks import bad_block_inputs
from mixology.spec.ffn import bad_ffn_inputs
from mixology.spec.norms import bad_norm_inputs
from mixology.spec.positional import bad_alibi_inputs, bad_rope_inputs, bad_sinusoidal_inputs
from mixology.spec.token_mix import bad_mix_inputs, bad_mixer_inputs

DEVICE = os.environ["MIXOLOGY_DEVICE"]
CASES = [("token_mix", c) for c in bad_mix_inputs("x").elements]
CASES += [("token_unmix", c) for c in bad_mix_inputs("y").elements]
CASES += [("token_mixer", c) for c in bad_mixer_inputs().elements]
CASES += [("softmax_attention", c) for c in bad_attention_inputs(True).elements]
CASES += [("quadratic_attention", c) for c in bad_attention_inputs(False).elements]
CASES += [("rope", c) for c in bad_rope_inputs().elements]
CASES += [("alibi", c) for c in bad_alibi_inputs().elements]
CASES += [("sinusoidal", c) for c in bad_sinusoidal_inputs().elements]
CASES += [("layer_norm", c) for c in bad_norm_inputs(rms=False).elements]
CASES += [(op, c) for op in ("feed_forward", "swiglu", "bilinear", "per_token_ffn")
          for c in bad_ffn_inputs(op).elements]
CASES += [("rms_norm", c) for c in bad_norm_inputs(rms=True).elements]
CASES += [(op, c) for op in ("rankmixer_block", "transformer_block")
          for c in bad_block_inputs(op).elements]


def _error(fn, args):
    try:
        fn(*args)
    except Exception as e:
        return type(e), str(e)
    return None, "accepted"


@pytest.mark.parametrize(("op", "bad"), CASES, ids=[f"{op}-{c.what}" for op, c in CASES])
def test_identical_errors(op, bad):
    errors = {impl: _error(registry.get(op, impl).fn, bad.args)
              for impl in registry.implementations(op, DEVICE)}
    assert len(set(errors.values())) == 1, errors
    kind, message = errors["reference"]
    assert kind is bad.error, message
    assert all(name in message for name in bad.names), message
