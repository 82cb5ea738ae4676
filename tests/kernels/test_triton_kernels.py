"""Each Triton kernel against the reference at shapes the spec's small hypothesis cases miss:
D over one column tile (1024), non-power-of-two D, many row tiles per backward program."""

import os

import pytest
import torch

from mixology.numerics.tolerance import assert_close
from mixology.ops.token_mix import reference as ref
from mixology.spec.helpers import assert_bitwise_equal, leaf

DEVICE = os.environ["MIXOLOGY_DEVICE"]
pytestmark = pytest.mark.skipif(
    DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1",
    reason="Triton needs CUDA or TRITON_INTERPRET=1")

triton = pytest.importorskip("triton")
tl = triton.language
from mixology.ops._kernels.triton_utils import cast_out  # noqa: E402


@triton.jit
def _cast_kernel(x_ptr, y_ptr, n, EMULATE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    m = offs < n
    tl.store(y_ptr + offs, cast_out(tl.load(x_ptr + offs, mask=m), tl.bfloat16, EMULATE), mask=m)


SHAPES = [(2, 3, 1536, 3), (3, 16, 768, 16), (1, 37, 96, 4), (5, 7, 10, 5)]


@pytest.mark.parametrize(("B", "T", "D", "H"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_permute_kernel_mix_and_unmix(B, T, D, H, dtype):
    from mixology.ops.token_mix.triton_permute import permute

    x = torch.randn(B, T, D, dtype=dtype, device=DEVICE)
    assert_bitwise_equal(permute(x, H, inverse=False), ref.token_mix(x, H), "mix")
    assert_bitwise_equal(permute(x, H, inverse=True), ref.token_unmix(x, H), "unmix")
    r = torch.randn_like(x)
    want = (ref.token_unmix(x, H).float() + r.float()).to(dtype)
    assert_bitwise_equal(permute(x, H, inverse=True, residual=r), want, "unmix + residual")


@pytest.mark.parametrize(("B", "T", "D", "H"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_kernel_forward_and_backward(B, T, D, H, dtype):
    from mixology.ops.token_mix.triton_fused import token_mixer

    check = _mixer_check(B, T, D, H, dtype)
    check(token_mixer)


def _mixer_check(B, T, D, H, dtype):
    """check(fn): fn's TokenMixer output and gradients on a seeded case, against the
    reference in ``dtype`` and in float64, by the tolerance policy."""
    g = torch.Generator().manual_seed(B * T * D)
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
    w = (1 + torch.randn(D, generator=g, dtype=torch.float64)).to(dtype).to(DEVICE)
    b = torch.randn(D, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
    dy = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(DEVICE)

    def run(fn, *args):
        leaves = [leaf(a) for a in args]
        y = fn(leaves[0], H, leaves[1], leaves[2], 1e-5)
        y.backward(dy.to(y.dtype))
        return [y.detach()] + [t.grad for t in leaves]

    low = run(ref.token_mixer, x, w, b)
    f64 = run(ref.token_mixer, x.double(), w.double(), b.double())
    names = ("y", "dx", "dweight", "dbias")

    def check(fn):
        got = run(fn, x, w, b)
        assert_close({n: t for n, t in zip(names, zip(got, low, f64, strict=True),
                                            strict=True)}, dtype)
    return check


def test_backward_programs_loop_over_many_tiles():
    """More row tiles than backward programs: the persistent loop and partial dw/db sums."""
    from mixology.ops._kernels.triton_utils import row_tile
    from mixology.ops.token_mix import triton_fused

    B, T, D, H = 4, 50, 64, 2
    assert B * T / row_tile(D)[0] > 4  # > the programs used on CPU
    x = leaf(torch.randn(B, T, D, dtype=torch.float64, device=DEVICE))
    w = leaf(torch.rand(D, dtype=torch.float64, device=DEVICE) + 0.5)
    b = leaf(torch.randn(D, dtype=torch.float64, device=DEVICE))
    triton_fused.token_mixer(x, H, w, b).sum().backward()
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    ref.token_mixer(x, H, w, b).sum().backward()
    for got, t in zip(grads, (x, w, b), strict=True):
        torch.testing.assert_close(got, t.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_backward_of_wide_rows_takes_the_column_kernel(dtype):
    """D > 4096 (BLOCK_D = 8192): dweight/dbias come from _fused_dwdb_kernel, by columns,
    over more row tiles than its grid has rows (the spec's ci tier stops at D = 1025). The
    kernel-scale mutant that floors its column grid leaves the last 8 columns' dweight
    unwritten and fails the same check."""
    from mixology.ops._kernels import launch_mutants
    from mixology.ops.token_mix import triton_fused

    B, T, D, H = 3, 7, 4104, 4
    assert triton.next_power_of_2(D) >= triton_fused.WIDE and D % triton_fused.DWDB_TILE[1]
    check = _mixer_check(B, T, D, H, dtype)
    check(triton_fused.token_mixer)
    with launch_mutants.floor_grid(triton_fused), pytest.raises(AssertionError):
        check(triton_fused.token_mixer)


def test_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    from mixology.ops._kernels.triton_utils import check_runnable

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        check_runnable(torch.zeros(1, 1, 1))


def test_bf16_output_rounding_is_round_to_nearest_even():
    """cast_out matches torch's float32 -> bfloat16 (RNE) bit for bit, NaN/Inf/ties included."""
    from mixology.ops._kernels.triton_utils import emulate_bf16_rne

    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 2**-8 * 3], dtype=torch.float32)
    x = torch.cat([torch.randn(4000) * 100, ties,
                   torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 3.4e38])])
    x = x.to(DEVICE)
    y = torch.empty_like(x, dtype=torch.bfloat16)
    _cast_kernel[(1,)](x, y, x.numel(), EMULATE=emulate_bf16_rne(torch.bfloat16), BLOCK=4096 * 2)
    want = x.to(torch.bfloat16)
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(y), nan)
    assert_bitwise_equal(y[~nan], want[~nan], "bf16 rounding")


# --- quadratic attention (linear form) ---------------------------------------------------

# d_head 16/32/64 as in the perf sweep, several chunks of 16 with a partial last one; the
# state split over i-blocks (d = 32, 64) and over d_v blocks (d_v = 70 > 64).
QUAD_SHAPES = [(1, 2, 50, 16, 16), (2, 1, 40, 32, 20), (1, 1, 35, 64, 16), (1, 1, 19, 8, 70)]


@pytest.mark.parametrize(("B", "H", "T", "d", "dv"), QUAD_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quadratic_kernels_at_head_sizes(B, H, T, d, dv, dtype):
    from mixology.ops.attention import reference
    from mixology.ops.attention.triton_quadratic import quadratic_attention
    from mixology.spec.numerics import assert_matches_reference

    g = torch.Generator().manual_seed(T * d + dv)
    q, k, v = (torch.randn(B, H, T, n, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
               for n in (d, d, dv))
    upstream = torch.randn(B, H, T, dv, generator=g, dtype=torch.float64).to(DEVICE)
    assert_matches_reference(quadratic_attention, reference.quadratic_attention, (q, k, v),
                             ("dq", "dk", "dv"), upstream=upstream)


def test_quadratic_blocks_split_the_state():
    """The shapes above do exercise partial sums over i-blocks and over d_v blocks."""
    from mixology.ops.attention.triton_quadratic import blocks

    splits = {(d, dv): (-(-d // blocks(d, dv)[1]), -(-dv // blocks(d, dv)[2]))
              for *_, d, dv in QUAD_SHAPES}
    assert max(n_i for n_i, _ in splits.values()) > 1, splits
    assert max(n_e for _, n_e in splits.values()) > 1, splits


def test_quadratic_gradcheck_across_a_chunk():
    """gradcheck in float64 with T over one chunk of 16 and the state split in two i-blocks
    (the spec's gradcheck cases stay inside one chunk). fast_mode: random projections of
    the Jacobian, not all 18 x 6 columns, to keep the interpreter run short."""
    from mixology.ops.attention.triton_quadratic import quadratic_attention_split

    g = torch.Generator().manual_seed(0)
    qkv = [leaf(torch.randn(1, 1, 18, 2, generator=g, dtype=torch.float64).to(DEVICE))
           for _ in range(3)]
    torch.autograd.gradcheck(quadratic_attention_split, tuple(qkv), fast_mode=True)


def test_quadratic_causality_across_a_chunk():
    """∂y_t/∂(q, k, v)_s == 0 exactly for s > t, for every t of T = 20 (over one chunk of 16),
    the state split in two i-blocks (the spec's causality cases stay under T = 15)."""
    from mixology.ops.attention.triton_quadratic import quadratic_attention_split

    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 20, 3, generator=g).to(DEVICE) for _ in range(3))
    for t in range(20):
        leaves = [leaf(x) for x in (q, k, v)]
        y = quadratic_attention_split(*leaves)
        grads = torch.autograd.grad(y[:, :, t].sum(), leaves)
        for name, grad in zip("qkv", grads, strict=True):
            assert torch.count_nonzero(grad[:, :, t + 1:]) == 0, f"y_{t} depends on later {name}"
            assert torch.count_nonzero(grad[:, :, t]) > 0, f"y_{t} ignores {name}_{t}"


# --- LayerNorm / RMSNorm -----------------------------------------------------------------

@pytest.mark.parametrize(("B", "T", "D"), [(2, 3, 1536), (4, 50, 96), (1, 7, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("op", ["layer_norm", "rms_norm"])
def test_norm_kernels_wide_rows_and_many_tiles(op, B, T, D, dtype):
    """D over one 1024 tile, and more row tiles than backward programs (partial dw/db)."""
    from mixology.ops.norms import reference, triton_norm
    from mixology.spec.numerics import assert_matches_reference

    g = torch.Generator().manual_seed(D)
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
    w = (1 + torch.randn(D, generator=g, dtype=torch.float64)).to(dtype).to(DEVICE)
    b = torch.randn(D, generator=g, dtype=torch.float64).to(dtype).to(DEVICE)
    up = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(DEVICE)
    if op == "layer_norm":
        args, names = (x, w, b), ("dx", "dweight", "dbias")
    else:
        args, names = (x, w), ("dx", "dweight")
    assert_matches_reference(getattr(triton_norm, op), getattr(reference, op), args, names,
                             upstream=up)


# --- SwiGLU / bilinear gate --------------------------------------------------------------

@pytest.mark.parametrize("op", ["swiglu", "bilinear"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gate_kernel_over_many_blocks(op, dtype):
    """B·T·F = 6000 hidden units: several blocks of 1024 and a partial last one."""
    from mixology.ops.ffn import reference, triton_gated
    from mixology.spec.numerics import assert_matches_reference

    g = torch.Generator().manual_seed(5)
    B, T, D, F = 3, 50, 16, 40

    def rnd(*s, scale=1.0):
        return (scale * torch.randn(*s, generator=g, dtype=torch.float64)).to(dtype).to(DEVICE)

    args = (rnd(B, T, D), rnd(D, F, scale=D**-0.5), rnd(D, F, scale=D**-0.5),
            rnd(F, D, scale=F**-0.5))
    up = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(DEVICE)
    assert_matches_reference(getattr(triton_gated, op), getattr(reference, op), args,
                             ("dx", "dw1", "dw2", "dw3"), upstream=up)


# --- feed-forward: bias, activation and dropout mask ------------------------------------

@pytest.mark.parametrize("activation", ["relu", "gelu", "silu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_ffn_kernel_over_many_blocks(activation, dtype):
    """B·T·F = 6000 hidden units (several blocks of 1024, a partial last one), with and without
    dropout: the bias is indexed by unit (offset % F) in every block."""
    from mixology.ops.ffn import reference, triton_ffn
    from mixology.spec.numerics import assert_matches_reference

    g = torch.Generator().manual_seed(6)
    B, T, D, F = 3, 50, 16, 40

    def rnd(*s, scale=1.0):
        return (scale * torch.randn(*s, generator=g, dtype=torch.float64)).to(dtype).to(DEVICE)

    args = (rnd(B, T, D), rnd(D, F, scale=D**-0.5), rnd(F, scale=0.5), rnd(F, D, scale=F**-0.5),
            rnd(D, scale=0.5))
    up = torch.randn(B, T, D, generator=g, dtype=torch.float64).to(DEVICE)
    for p in (0.0, 0.3):
        assert_matches_reference(
            lambda *t, p=p: triton_ffn.feed_forward(*t, activation, p, 11),
            lambda *t, p=p: reference.feed_forward(*t, activation, p, 11),
            args, ("dx", "dw1", "db1", "dw2", "db2"), upstream=up)
