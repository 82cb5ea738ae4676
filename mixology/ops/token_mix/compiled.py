"""``torch.compile`` of the einops reference (inductor; C++ on CPU, Triton on CUDA).

Inputs are checked eagerly, outside the compiled region, so bad input raises the same
error as every other implementation. ``fail_on_recompile_limit_hit`` makes a shape sweep
that exhausts dynamo's recompile budget fail loudly instead of silently running eager code
(which would let the spec test the reference twice and call it "compiled").
"""

from __future__ import annotations

import functools

from mixology.ops.token_mix import reference
from mixology.validate import check_mix_input, check_mixer_input


@functools.cache
def compile_reference(fn):
    """torch.compile(fn) with the dynamo settings above, once per function."""
    import torch._dynamo

    # dynamic=True: one graph serves all sizes; dtype, strides, requires_grad and dynamo's
    # 0/1-size specializations still recompile (about 0.3 s each on CPU), hence the budget.
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 512)
    # Buffer donation would make compiled backward graphs refuse retain_graph=True, which
    # gradcheck needs; it saves memory, not time.
    import torch._functorch.config

    torch._functorch.config.donated_buffer = False
    torch._dynamo.config.accumulated_recompile_limit = max(
        torch._dynamo.config.accumulated_recompile_limit, 4096)
    return torch.compile(fn, dynamic=True)


def _compiled(name: str):
    return compile_reference(getattr(reference, name))


def token_mix(x, num_heads):
    check_mix_input(x, num_heads)
    return _compiled("token_mix")(x, num_heads)


def token_unmix(y, num_heads):
    check_mix_input(y, num_heads, name="y")
    return _compiled("token_unmix")(y, num_heads)


def token_mixer(x, num_heads, weight, bias, eps=1e-5):
    check_mixer_input(x, num_heads, weight, bias, eps)
    return _compiled("token_mixer")(x, num_heads, weight, bias, eps)
