"""The chunked forms are one function whatever the chunk size: linear attention's chunked
form at every chunk size from 1 to T + 1 (a single chunk), and its token-by-token recurrence,
within the tolerance policy of the parallel reference, forward and every gradient."""

import dataclasses

import pytest
import torch

from mixology.ops.linear_attention import chunked, recurrent, reference
from mixology.spec.linear_attention import LinCase, packed
from mixology.spec.numerics import assert_matches_reference

CASE = LinCase(B=2, H=2, T=11, dk=3, dv=2, dtype=torch.float32, layout="projected", seed=5,
               decay="gated", strength=1.0, initial=True, output_final_state=True, scale=None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk_size", range(1, CASE.T + 2))
def test_chunked_form_at_every_chunk_size(chunk_size, dtype):
    case = dataclasses.replace(CASE, dtype=dtype)

    def fn(*args):
        return chunked.linear_attention(*args, chunk_size=chunk_size)

    assert_matches_reference(packed(fn, case), packed(reference.linear_attention, case),
                             case.tensors(), case.grad_names(), upstream=case.upstream())


@pytest.mark.parametrize("decay", ["none", "retention", "gated"])
def test_recurrent_form(decay):
    case = dataclasses.replace(CASE, decay=decay)
    assert_matches_reference(packed(recurrent.linear_attention, case),
                             packed(reference.linear_attention, case), case.tensors(),
                             case.grad_names(), upstream=case.upstream())


def test_a_chunk_that_loses_a_decay_is_caught():
    """The comparison can fail: a chunked form that drops the decay of each chunk's last
    step."""
    case = CASE

    def off_by_one(q, k, v, g, scale, s, final):
        g = g.clone()
        g[:, :, 3::4] = 0.0  # the decay of every chunk's last step lost
        return chunked.linear_attention(q, k, v, g, scale, s, final, chunk_size=4)

    with pytest.raises(AssertionError):
        assert_matches_reference(packed(off_by_one, case),
                                 packed(reference.linear_attention, case), case.tensors(),
                                 case.grad_names(), upstream=case.upstream())
