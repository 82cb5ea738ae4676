"""torch's own LayerNorm and RMSNorm (``torch.nn.functional``)."""

from __future__ import annotations

import torch.nn.functional as F

from mixology.ops.norms.checks import check_norm_input


def layer_norm(x, weight, bias, eps=1e-5):
    check_norm_input(x, weight, bias, eps)
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def rms_norm(x, weight, eps=1e-5):
    check_norm_input(x, weight, None, eps, has_bias=False)
    return F.rms_norm(x, (x.shape[-1],), weight, eps)
