"""A user's kernels: independent implementations of every op, written without the references
(plain torch, torch.nn.functional, online softmax, token-by-token recurrences, complex
rotation), with input checks of their own. The spec must accept every one of them
(tests/spec/test_candidates.py); ``bad_token_mix`` (the permute-back mixer) it must reject.
"""

import math

import torch
import torch.nn.functional as F

from mixology.ops.ffn.reference import dropout_mask
from mixology.ops.token_mix.checks import check_mix_input


def _acc(x):
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def _need(ok: bool, name: str, what: str, error=ValueError):
    """This user's own input checks: the message names the argument, in its own words."""
    if not ok:
        raise error(f"bad argument {name!r}: {what}")


def _tensor(t, name, ndim=None):
    _need(isinstance(t, torch.Tensor) and t.is_floating_point(), name,
          "expected a floating-point tensor", TypeError)
    if ndim is not None:
        _need(t.ndim == ndim, name, f"expected {ndim} dims, got {t.ndim}")


def _same(t, like, name):
    _need(t.dtype == like.dtype, name, f"dtype {t.dtype} is not {like.dtype}", TypeError)


def _flag(value, name):
    _need(isinstance(value, bool), name, "expected a bool", TypeError)


def _eps(eps):
    _need(isinstance(eps, float) and not isinstance(eps, bool), "eps", "expected a float",
          TypeError)
    _need(eps > 0, "eps", "must be > 0")


# --- token mixing ---------------------------------------------------------------------------

def good_token_mix(x, num_heads):
    """A hand-written version with view/permute (no einops)."""
    B, T, D, d = check_mix_input(x, num_heads)
    return x.reshape(B, T, num_heads, d).permute(0, 2, 1, 3).reshape(B, T, D)


def bad_token_mix(x, num_heads):
    """Permutes back: the identity."""
    B, T, D, d = check_mix_input(x, num_heads)
    h = x.reshape(B, T, num_heads, d).permute(0, 2, 1, 3)
    return h.permute(0, 2, 1, 3).reshape(B, T, D)


def unchecked_token_mix(x, num_heads):
    """Correct on good input, with no input checks: bad input fails inside torch, with
    messages that do not name the argument (a contract failure, not a wrong answer)."""
    B, T, D = x.shape
    return x.reshape(B, T, num_heads, D // num_heads).permute(0, 2, 1, 3).reshape(B, T, D)


def good_token_unmix(y, num_heads):
    """The inverse permutation, by gather on the flat index."""
    B, T, D, d = check_mix_input(y, num_heads, name="y")
    return y.reshape(B, num_heads, T, d).permute(0, 2, 1, 3).reshape(B, T, D)


def good_token_mixer(x, num_heads, weight, bias, eps=1e-5):
    from mixology.ops.token_mix.checks import check_mixer_input

    check_mixer_input(x, num_heads, weight, bias, eps)
    z = x + good_token_mix(x, num_heads)
    return torch.nn.functional.layer_norm(z, (x.shape[-1],), weight, bias, eps)


# --- norms ----------------------------------------------------------------------------------

def _norm_checks(x, weight, bias, eps):
    _tensor(x, "x", 3)
    for name, t in (("weight", weight), ("bias", bias)):
        if name == "bias" and t is None:
            continue
        _tensor(t, name, 1)
        _need(t.shape[0] == x.shape[-1], name, "must have x's last dim")
        _same(t, x, name)
    _eps(eps)


def layer_norm_var_mean(x, weight, bias, eps=1e-5):
    """torch.var_mean in float32 (float64 stays), then scale and shift."""
    _norm_checks(x, weight, bias, eps)
    xf = _acc(x)
    var, mean = torch.var_mean(xf, dim=-1, keepdim=True, correction=0)
    return ((xf - mean) / torch.sqrt(var + eps) * _acc(weight) + _acc(bias)).to(x.dtype)


def layer_norm_functional(x, weight, bias, eps=1e-5):
    """torch.nn.functional.layer_norm as it is. Not in CORRECT: in float16 its CPU backward is
    less accurate than the policy allows (dev profile: D = 2, dx 4.7e-3 off where the
    float32-accumulating reference is 2.5e-7 off and the floor 3.8e-3; docs/tolerance.md).
    Accepted in float32 and float64."""
    _norm_checks(x, weight, bias, eps)
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def rms_norm_by_hand(x, weight, eps=1e-5):
    """x · rsqrt(mean(x²) + eps) · weight, in float32."""
    _norm_checks(x, weight, None, eps)
    xf = _acc(x)
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * _acc(weight)).to(x.dtype)


# --- attention --------------------------------------------------------------------------------

def _qkv_checks(q, k, v):
    for name, t in (("q", q), ("k", k), ("v", v)):
        _tensor(t, name, 4)
    _need(k.shape == q.shape, "k", "must have q's shape")
    _need(v.shape[:3] == q.shape[:3], "v", "must match q in (B, H, T)")
    _same(k, q, "k")
    _same(v, q, "v")


def online_softmax_attention(q, k, v, causal=False, alibi=False, block=7):
    """Flash-attention style: keys in blocks of 7, a running max and running sum per query
    (float32 accumulation), ALiBi slopes from the closed form 2^(-8 h / H) for powers of two."""
    _qkv_checks(q, k, v)
    _flag(causal, "causal")
    _flag(alibi, "alibi")
    B, H, T, d = q.shape
    qf, kf, vf = _acc(q), _acc(k), _acc(v)
    pos = torch.arange(T, device=q.device)
    slopes = torch.tensor(_alibi_slopes(H), dtype=qf.dtype, device=q.device).view(1, H, 1, 1)
    m = torch.full((B, H, T, 1), -math.inf, dtype=qf.dtype, device=q.device)
    denom = torch.zeros((B, H, T, 1), dtype=qf.dtype, device=q.device)
    out = torch.zeros((B, H, T, v.shape[-1]), dtype=qf.dtype, device=q.device)
    for s0 in range(0, T, block):
        kb, vb, pb = kf[:, :, s0:s0 + block], vf[:, :, s0:s0 + block], pos[s0:s0 + block]
        s = torch.matmul(qf, kb.transpose(-1, -2)) / math.sqrt(d)
        dist = (pos[:, None] - pb[None, :]).to(qf.dtype)
        if alibi:
            s = s - slopes * (dist if causal else dist.abs())
        if causal:
            s = s.masked_fill(dist < 0, -math.inf)
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - safe)
        scale = torch.exp(m - safe)
        denom = denom * scale + p.sum(-1, keepdim=True)
        out = out * scale + torch.matmul(p, vb)
        m = m_new
    return (out / denom).to(q.dtype)


def _alibi_slopes(H):
    n = 2 ** math.floor(math.log2(H))
    first = [2 ** (-8 * (i + 1) / n) for i in range(n)]
    extra = [2 ** (-8 * (i + 1) / (2 * n)) for i in range(0, 2 * (H - n), 2)]
    return first + extra


def quadratic_attention_recurrent(q, k, v):
    """Token by token: S_t = S_{t-1} + (k_t ⊗ k_t) v_tᵀ, y_t = (q_t ⊗ q_t)ᵀ S_t / d, in float32."""
    _qkv_checks(q, k, v)
    B, H, T, d = q.shape
    qf, kf, vf = _acc(q), _acc(k), _acc(v)
    state = torch.zeros(B, H, d, d, v.shape[-1], dtype=qf.dtype, device=q.device)
    ys = []
    for t in range(T):
        kt, vt, qt = kf[:, :, t], vf[:, :, t], qf[:, :, t]
        state = state + kt[..., :, None, None] * kt[..., None, :, None] * vt[..., None, None, :]
        ys.append((qt[..., :, None, None] * qt[..., None, :, None] * state).sum((2, 3)) / d)
    y = torch.stack(ys, dim=2) if ys else qf.new_zeros(B, H, 0, v.shape[-1])
    return y.to(q.dtype)


def linear_attention_token_by_token(q, k, v, g=None, scale=None, initial_state=None,
                                    output_final_state=False):
    """fla's recurrent kernel written out: q scaled first, then per token the state decays by
    exp(g_t) and takes k_tᵀ v_t (a matmul of a column by a row), o_t = q_t S_t; float32
    state."""
    _qkv_checks(q, k, v)
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    if g is not None:
        _tensor(g, "g", 3)
        _need(tuple(g.shape) == (B, H, T), "g", "must be (B, H, T)")
        _need(g.dtype in (q.dtype, _acc(q).dtype), "g", "dtype is neither q's nor float32",
              TypeError)
        _need(not bool((g > 0).any()), "g", "a log-decay must be <= 0")
    if scale is not None:
        _need(isinstance(scale, (int, float)) and not isinstance(scale, bool), "scale",
              "expected a float", TypeError)
        _need(math.isfinite(scale) and scale > 0, "scale", "must be finite and > 0")
    if initial_state is not None:
        _tensor(initial_state, "initial_state", 4)
        _need(tuple(initial_state.shape) == (B, H, dk, dv), "initial_state",
              "must be (B, H, d_k, d_v)")
        _need(initial_state.dtype in (q.dtype, _acc(q).dtype), "initial_state",
              "dtype is neither q's nor float32", TypeError)
    _flag(output_final_state, "output_final_state")
    qf = _acc(q) * (dk ** -0.5 if scale is None else scale)
    kf, vf = _acc(k), _acc(v)
    S = (_acc(initial_state) if initial_state is not None
         else qf.new_zeros(B, H, dk, dv))
    outs = []
    for t in range(T):
        if g is not None:
            S = S * torch.exp(_acc(g[:, :, t]))[:, :, None, None]
        S = S + torch.matmul(kf[:, :, t, :, None], vf[:, :, t, None, :])
        outs.append(torch.matmul(qf[:, :, t, None, :], S)[:, :, 0])
    o = torch.stack(outs, dim=2) if outs else qf.new_zeros(B, H, 0, dv)
    return o.to(q.dtype), (S if output_final_state else None)


# --- positional encodings -------------------------------------------------------------------

def rope_complex(x, interleaved=False):
    """Pairs as complex numbers times e^{i t θ_f} (angles in float64, product in float32)."""
    _tensor(x, "x", 4)
    _need(x.shape[-1] % 2 == 0, "x", "last dim must be even")
    _flag(interleaved, "interleaved")
    B, H, T, d = x.shape
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    angle = torch.arange(T, dtype=torch.float64, device=x.device)[:, None] * theta
    xf = _acc(x)
    rot = torch.polar(torch.ones_like(angle), angle).to(
        torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    if interleaved:  # (not view_as_complex: it refuses an odd storage offset, a valid layout)
        pairs = xf.reshape(B, H, T, d // 2, 2)
        z = torch.complex(pairs[..., 0], pairs[..., 1])
        return torch.view_as_real(z * rot).reshape(B, H, T, d).to(x.dtype)
    z = torch.complex(xf[..., : d // 2], xf[..., d // 2:])
    y = z * rot
    return torch.cat([y.real, y.imag], dim=-1).to(x.dtype)


def alibi_broadcast(scores, causal=False):
    """scores - slope_h · distance, slopes from the closed form, distances by broadcasting."""
    _tensor(scores, "scores", 4)
    _need(scores.shape[-1] == scores.shape[-2], "scores", "must be square in (T, T)")
    _flag(causal, "causal")
    B, H, T, _ = scores.shape
    i = torch.arange(T, dtype=torch.float64, device=scores.device)
    dist = i[:, None] - i[None, :]
    slopes = torch.tensor(_alibi_slopes(H), dtype=torch.float64, device=scores.device)
    bias = -slopes.view(H, 1, 1) * (dist if causal else dist.abs())
    return scores + bias.to(scores.dtype)


def sinusoidal_exp_log(x):
    """PE by exp(-2f·ln(10000)/D) frequencies, the way most Transformer code writes it."""
    _tensor(x, "x", 3)
    _need(x.shape[-1] % 2 == 0, "x", "last dim must be even")
    B, T, D = x.shape
    t = torch.arange(T, dtype=torch.float64, device=x.device)[:, None]
    freq = torch.exp(torch.arange(0, D, 2, dtype=torch.float64, device=x.device)
                     * (-math.log(10000.0) / D))
    pe = torch.zeros(T, D, dtype=torch.float64, device=x.device)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq)
    return x + pe.to(_acc(x).dtype).to(x.dtype)


# --- channel mixers --------------------------------------------------------------------------

_ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def _ffn_checks(x, weights, biases=()):
    _tensor(x, "x", 3)
    for name, w in weights:
        _tensor(w, name)
        _same(w, x, name)
    for name, b in biases:
        _tensor(b, name)
        _same(b, x, name)


def feed_forward_linear(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """F.linear twice (weights stored (in, out)), the op's dropout mask when p > 0."""
    _ffn_checks(x, (("w1", w1), ("w2", w2)), (("b1", b1), ("b2", b2)))
    _need(w1.ndim == 2 and w1.shape[0] == x.shape[-1], "w1", "must be (D, F)")
    _need(w2.ndim == 2 and w2.shape == w1.shape[::-1], "w2", "must be (F, D)")
    _need(b1.shape == (w1.shape[1],), "b1", "must be (F,)")
    _need(b2.shape == (x.shape[-1],), "b2", "must be (D,)")
    _need(isinstance(activation, str), "activation", "expected a name", TypeError)
    _need(activation in _ACTS, "activation", f"one of {sorted(_ACTS)}")
    _need(isinstance(dropout, float | int) and not isinstance(dropout, bool), "dropout",
          "expected a number", TypeError)
    _need(0 <= dropout < 1, "dropout", "must be in [0, 1)")
    _need(seed is None or (isinstance(seed, int) and not isinstance(seed, bool)), "seed",
          "expected an int", TypeError)
    h = _ACTS[activation](F.linear(x, w1.t(), b1))
    if dropout > 0:
        h = h * dropout_mask(h.shape, float(dropout), seed, x.dtype, x.device)
    return F.linear(h, w2.t(), b2)


def swiglu_matmul(x, w_gate, w_up, w_down):
    _ffn_checks(x, (("w_gate", w_gate), ("w_up", w_up), ("w_down", w_down)))
    _need(w_gate.ndim == 2 and w_gate.shape[0] == x.shape[-1], "w_gate", "must be (D, F)")
    _need(w_up.shape == w_gate.shape, "w_up", "must be (D, F)")
    _need(w_down.ndim == 2 and w_down.shape == w_gate.shape[::-1], "w_down", "must be (F, D)")
    return torch.matmul(F.silu(torch.matmul(x, w_gate)) * torch.matmul(x, w_up), w_down)


def bilinear_matmul(x, w1, w2, w_out):
    _ffn_checks(x, (("w1", w1), ("w2", w2), ("w_out", w_out)))
    _need(w1.ndim == 2 and w1.shape[0] == x.shape[-1], "w1", "must be (D, F)")
    _need(w2.shape == w1.shape, "w2", "must be (D, F)")
    _need(w_out.ndim == 2 and w_out.shape == w1.shape[::-1], "w_out", "must be (F, D)")
    return torch.matmul(torch.matmul(x, w1) * torch.matmul(x, w2), w_out)


def bilinear_fused(x, w1, w2, w_out):
    """Both projections in one matmul against [W1 W2]: each column of x W1 and x W2 is rounded
    where its position in the fused product puts it (another evaluation order)."""
    _ffn_checks(x, (("w1", w1), ("w2", w2), ("w_out", w_out)))
    _need(w1.ndim == 2 and w1.shape[0] == x.shape[-1], "w1", "must be (D, F)")
    _need(w2.shape == w1.shape, "w2", "must be (D, F)")
    _need(w_out.ndim == 2 and w_out.shape == w1.shape[::-1], "w_out", "must be (F, D)")
    a, b = torch.matmul(x, torch.cat([w1, w2], dim=1)).split(w1.shape[1], dim=-1)
    return torch.matmul(a * b, w_out)


def bilinear_split_k(x, w1, w2, w_out):
    """x W2 summed as two halves of D (a split-K reduction), x W1 in one: the two factors round
    differently, so swapping W1 and W2 changes the last bits (a correct evaluation order)."""
    _ffn_checks(x, (("w1", w1), ("w2", w2), ("w_out", w_out)))
    _need(w1.ndim == 2 and w1.shape[0] == x.shape[-1], "w1", "must be (D, F)")
    _need(w2.shape == w1.shape, "w2", "must be (D, F)")
    _need(w_out.ndim == 2 and w_out.shape == w1.shape[::-1], "w_out", "must be (F, D)")
    h = x.shape[-1] // 2
    b = torch.matmul(x[..., :h], w2[:h]) + torch.matmul(x[..., h:], w2[h:])
    return torch.matmul(torch.matmul(x, w1) * b, w_out)


def per_token_ffn_loop(x, w1, b1, w2, b2, activation="gelu"):
    """One F.linear FFN per token, in a Python loop."""
    _ffn_checks(x, (("w1", w1), ("w2", w2)), (("b1", b1), ("b2", b2)))
    B, T, D = x.shape
    _need(w1.ndim == 3 and w1.shape[:2] == (T, D), "w1", "must be (T, D, F)")
    F_ = w1.shape[2]
    _need(w2.shape == (T, F_, D), "w2", "must be (T, F, D)")
    _need(b1.shape == (T, F_), "b1", "must be (T, F)")
    _need(b2.shape == (T, D), "b2", "must be (T, D)")
    _need(isinstance(activation, str), "activation", "expected a name", TypeError)
    _need(activation in _ACTS, "activation", f"one of {sorted(_ACTS)}")
    outs = [F.linear(_ACTS[activation](F.linear(x[:, t], w1[t].t(), b1[t])), w2[t].t(), b2[t])
            for t in range(T)]
    return torch.stack(outs, dim=1) if outs else x.new_zeros(B, 0, D)


# op -> the independent implementations of it above (tests/spec/test_candidates.py)
CORRECT = {
    "token_mix": ["good_token_mix"],
    "token_unmix": ["good_token_unmix"],
    "token_mixer": ["good_token_mixer"],
    "layer_norm": ["layer_norm_var_mean"],
    "rms_norm": ["rms_norm_by_hand"],
    "softmax_attention": ["online_softmax_attention"],
    "quadratic_attention": ["quadratic_attention_recurrent"],
    "linear_attention": ["linear_attention_token_by_token"],
    "rope": ["rope_complex"],
    "alibi": ["alibi_broadcast"],
    "sinusoidal": ["sinusoidal_exp_log"],
    "feed_forward": ["feed_forward_linear"],
    "swiglu": ["swiglu_matmul"],
    "bilinear": ["bilinear_matmul", "bilinear_fused", "bilinear_split_k"],
    "per_token_ffn": ["per_token_ffn_loop"],
}
