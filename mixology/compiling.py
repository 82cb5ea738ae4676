"""``torch.compile`` of an op's einops reference, the same way for every op.

Each op's ``compiled.py`` checks inputs eagerly, outside the compiled region (so bad input
raises the same error as every other implementation), then calls the graph made here.
``fail_on_recompile_limit_hit`` makes a shape sweep that exhausts dynamo's recompile budget
fail loudly instead of silently running eager code (which would let the spec test the
reference twice and call it "compiled").
"""

from __future__ import annotations

import functools


@functools.cache
def compile_reference(fn):
    """torch.compile(fn) with the dynamo settings above, once per function."""
    import torch
    import torch._dynamo
    import torch._functorch.config

    # dynamic=True: one graph serves all sizes; dtype, strides, requires_grad and dynamo's
    # 0/1-size specializations still recompile (about 0.3 s each on CPU), hence the budget.
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 512)
    torch._dynamo.config.accumulated_recompile_limit = max(
        torch._dynamo.config.accumulated_recompile_limit, 4096)
    # Buffer donation would make compiled backward graphs refuse retain_graph=True, which
    # gradcheck needs; it saves memory, not time.
    torch._functorch.config.donated_buffer = False
    return torch.compile(fn, dynamic=True)
