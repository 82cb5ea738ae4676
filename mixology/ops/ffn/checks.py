"""Input checks of the channel mixers: feed_forward, swiglu, bilinear, per_token_ffn.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

from mixology.ops.checks import check_like_x, check_tensor


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
