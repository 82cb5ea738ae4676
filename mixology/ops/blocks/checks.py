"""Input checks of the blocks' parameter dicts.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

from mixology.ops.checks import check_like_x, check_tensor


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
