"""Input checks shared by every implementation.

Every implementation calls these before touching the data, so bad input gets the same
``TypeError``/``ValueError`` (naming the argument and the expected shape) from the einops
reference, the compiled version and the Triton kernels alike, never a crash inside a kernel.
"""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def check_tensor(value, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float64, float32, float16, bfloat16), "
            f"got {value.dtype}"
        )
    return value


def check_like_x(x: torch.Tensor, t: torch.Tensor, name: str) -> None:
    """``t`` (named ``name``) has x's dtype and is on x's device."""
    if t.dtype != x.dtype:
        raise TypeError(f"{name} must have the dtype of x ({x.dtype}), got {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device ({x.device}), got {t.device}")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_mix_input(x, num_heads, name: str = "x") -> tuple[int, int, int, int]:
    """Check ``x: (B, T, D)`` and ``num_heads`` dividing D; return ``(B, T, D, head_dim)``."""
    check_tensor(x, name)
    check_positive_int(num_heads, "num_heads")
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (B, T, D) with D divisible by num_heads, "
            f"got ndim={x.ndim} (shape {tuple(x.shape)})"
        )
    B, T, D = x.shape
    if D % num_heads != 0:
        raise ValueError(
            f"num_heads={num_heads} must divide D, the last dim of {name} "
            f"(shape {tuple(x.shape)}, D={D})"
        )
    return B, T, D, D // num_heads


def check_layer_norm_params(x: torch.Tensor, weight, bias, eps) -> None:
    D = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        check_tensor(p, name)
        if p.shape != (D,):
            raise ValueError(f"{name} must have shape (D,) = ({D},), got {tuple(p.shape)}")
        check_like_x(x, p, name)
    check_eps(eps)


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps must be a float, got {type(eps).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return eps


def check_mixer_input(x, num_heads, weight, bias, eps) -> tuple[int, int, int, int]:
    dims = check_mix_input(x, num_heads)
    check_layer_norm_params(x, weight, bias, eps)
    return dims


def check_flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_qkv(q, k, v) -> tuple[int, int, int, int]:
    """q, k: (B, H, T, d); v: (B, H, T, d_v); one dtype and device. Returns (B, H, T, d)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name)
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, H, T, d), got ndim={t.ndim} "
                             f"(shape {tuple(t.shape)})")
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape (B, H, T, d) = {tuple(q.shape)}, "
                         f"got {tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must have shape (B, H, T, d_v) with (B, H, T) = {tuple(q.shape[:3])}, "
                         f"got {tuple(v.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have q's dtype ({q.dtype}), got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on q's device ({q.device}), got {t.device}")
    return tuple(q.shape)


def check_rope_input(x, interleaved) -> tuple[int, int, int, int]:
    """x: (B, H, T, d) with d even; interleaved: bool."""
    check_tensor(x, "x")
    if x.ndim != 4 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (B, H, T, d) with d even, got shape {tuple(x.shape)}")
    check_flag(interleaved, "interleaved")
    return tuple(x.shape)


def check_alibi_input(scores, causal) -> tuple[int, int, int, int]:
    """scores: (B, H, T, T) attention scores; causal: bool."""
    check_tensor(scores, "scores")
    if scores.ndim != 4 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must have shape (B, H, T, T), got shape {tuple(scores.shape)}")
    check_flag(causal, "causal")
    return tuple(scores.shape)


def check_sinusoidal_input(x) -> tuple[int, int, int]:
    """x: (B, T, D) with D even."""
    check_tensor(x, "x")
    if x.ndim != 3 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (B, T, D) with D even, got shape {tuple(x.shape)}")
    return tuple(x.shape)


def check_norm_input(x, weight, bias, eps, *, has_bias: bool = True) -> tuple[int, int, int]:
    """x: (B, T, D); weight (and bias, for LayerNorm): (D,) in x's dtype; eps > 0."""
    check_tensor(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got ndim={x.ndim} (shape {tuple(x.shape)})")
    if has_bias:
        check_layer_norm_params(x, weight, bias, eps)
    else:
        check_layer_norm_params(x, weight, weight, eps)
    return tuple(x.shape)


def check_ffn_input(x, weights: dict, biases: tuple = ()) -> tuple[int, int, int, int]:
    """x: (B, T, D); ``weights``: name -> matrix, in order: (D, F) for all but the last, which is
    (F, D); ``biases``: (name, tensor, "F" or "D") of shape (F,) or (D,). Returns (B, T, D, F)."""
    check_tensor(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got ndim={x.ndim} (shape {tuple(x.shape)})")
    D = x.shape[-1]
    items = list(weights.items())
    first = check_tensor(items[0][1], items[0][0])
    F = first.shape[1] if first.ndim == 2 else None
    for i, (name, w) in enumerate(items):
        check_tensor(w, name)
        last = i == len(items) - 1
        want = (F, D) if last else (D, F)
        if tuple(w.shape) != want:
            raise ValueError(f"{name} must have shape {'(F, D)' if last else '(D, F)'} = "
                             f"{want}, got {tuple(w.shape)}")
    sizes = {"F": F, "D": D}
    for name, b, size in biases:
        check_tensor(b, name)
        if tuple(b.shape) != (sizes[size],):
            raise ValueError(f"{name} must have shape ({size},) = ({sizes[size]},), "
                             f"got {tuple(b.shape)}")
    for name, t in items + [(name, b) for name, b, _ in biases]:
        check_like_x(x, t, name)
    return (*x.shape, F)


ACTIVATIONS = ("relu", "gelu", "silu")


def check_activation(activation) -> str:
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a str, one of {ACTIVATIONS}, got "
                        f"{type(activation).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def check_dropout(p, seed) -> float:
    """Dropout probability ``p``, a real in [0, 1), and ``seed``, None or an int."""
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"dropout must be a float in [0, 1), got {type(p).__name__}")
    if not 0 <= p < 1:
        raise ValueError(f"dropout must be in [0, 1), got {p!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be None or an int, got {type(seed).__name__}")
    return float(p)


def check_pffn_input(x, w1, b1, w2, b2) -> tuple[int, int, int, int]:
    """x: (B, T, D); per-token weights w1: (T, D, F), b1: (T, F), w2: (T, F, D), b2: (T, D),
    all in x's dtype and on its device. Returns (B, T, D, F)."""
    check_tensor(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got ndim={x.ndim} (shape {tuple(x.shape)})")
    _, T, D = x.shape
    check_tensor(w1, "w1")
    F = w1.shape[-1] if w1.ndim == 3 else None
    for name, t, want, text in (("w1", w1, (T, D, F), "(T, D, F)"), ("b1", b1, (T, F), "(T, F)"),
                                ("w2", w2, (T, F, D), "(T, F, D)"), ("b2", b2, (T, D), "(T, D)")):
        check_tensor(t, name)
        if tuple(t.shape) != want:
            raise ValueError(f"{name} must have shape {text} = {want} (one per token of x), "
                             f"got {tuple(t.shape)}")
        check_like_x(x, t, name)
    return (*x.shape, F)


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_params(x, params, shapes: dict) -> None:
    """``params``: a dict holding exactly the tensors named in ``shapes`` (name -> (shape,
    "its text", e.g. "(D, F)")), each of that shape and of x's dtype and device."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of tensors, got {type(params).__name__}")
    for name in params:
        if name not in shapes:
            raise ValueError(f"params has an unexpected entry {name!r}; expected {list(shapes)}")
    for name, (shape, text) in shapes.items():
        if name not in params:
            raise ValueError(f"params is missing {name!r} of shape {text} = {shape}")
        t = check_tensor(params[name], f"params[{name!r}]")
        if tuple(t.shape) != shape:
            raise ValueError(f"params[{name!r}] must have shape {text} = {shape}, "
                             f"got {tuple(t.shape)}")
        check_like_x(x, t, f"params[{name!r}]")
