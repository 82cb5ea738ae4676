"""``torch.compile`` of an op's einops reference, the same way for every op.

Each op's ``compiled.py`` checks inputs eagerly, outside the compiled region (so bad input
raises the same error as every other implementation), then calls the graph made here.
``fail_on_recompile_limit_hit`` makes a shape sweep that exhausts dynamo's recompile budget
fail loudly instead of silently running eager code (which would let the spec test the
reference twice and call it "compiled"); the call then resets dynamo's caches and compiles
afresh (the `thorough` profile's 11,197 attention cases hit the 512 budget).
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def compile_reference(fn):
    """torch.compile(fn) with the dynamo settings above, once per function."""
    # dynamo loads only when a compiled implementation is first called
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
    graph = torch.compile(fn, dynamic=True)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        args = tuple(_materialized(a) for a in args)
        try:
            return graph(*args, **kwargs)
        except torch._dynamo.exc.FailOnRecompileLimitHit:
            # A long sweep (the `thorough` profile draws thousands of dtype/stride/size
            # combinations) exhausts the budget: start dynamo's caches afresh and compile
            # again, rather than fail a correct implementation or run it eagerly.
            torch._dynamo.reset()
            return graph(*args, **kwargs)

    return call


def _materialized(a):
    """A non-contiguous tensor as a contiguous copy: inductor with dynamic=True (torch 2.13,
    CPU) computes wrong results on some strided inputs, and the spec found two.
    - ``x.reshape(B, T, 1, D).permute(0, 2, 1, 3).reshape(B, T, D)`` on ``base.expand(3, 8, 3)``
      (a stride of 0) gives a gradient up to 2.6 away from eager's (`dev`:
      token_mix/gradient_is_inverse_permutation [compiled], layout 'expanded').
    - Causal softmax attention on every-other-row q, k, v with scores near 1e4 gives outputs
      1.8 off in float64 (`thorough`: softmax_attention/attn_large_scores [compiled], layout
      'strided'), 44.7 off on the regression test's strides (14, 14, 2, 1).
    Static shapes are right in both. The copy keeps the graph's arithmetic the reference's,
    and autograd takes the copy's gradient back to the strided input."""
    if isinstance(a, torch.Tensor) and a.dim() and not a.is_contiguous():
        return a.contiguous()
    return a
