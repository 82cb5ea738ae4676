"""Sensitivity: how small an error the spec sees. For each op, dtype and output (the forward
and each gradient), the smallest k for which the comparison with the reference rejects that
output perturbed by k units of the reference's own error (mutation operators
``output_perturbed(k)`` and ``grad_perturbed(input, k)``).

    python -m mixology mutants --sensitivity [--op OP]
"""

from __future__ import annotations

from collections.abc import Callable

from mixology import registry, spec
from mixology.spec.generic import NOT_BY_THE_POLICY, compares_with_reference
from mixology.spec.strategies import FLOATS
from mixology.verify import operators, runner

LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)


def _perturbed(sig, ref, target: str | None, k: int) -> Callable:
    """The reference with its output (target None) or the gradient of input ``target`` off by
    k units of its own error."""
    if target is None:
        return next(operators._output_perturbed(sig.op, sig, ref, k))[1]
    return next(m for name, m, _ in operators._grad_perturbed(sig.op, sig, ref, k)
                if name.startswith(f"grad_perturbed({target},"))


def sensitivity(op: str, dtype, target: str | None, *, profile: str = "ci",
                device: str = "cpu") -> int | None:
    """The smallest k in LADDER for which the comparison with the reference (forward and
    every gradient, by the tolerance policy, on the op's cases in ``dtype``) rejects the
    output (``target`` None) or the gradient of ``target`` perturbed by k units of the
    reference's own error; None if it rejects none."""
    sig = next(s for s in spec.signatures() if s.op == op)
    ref = registry.get(op).fn
    cases = sig.cases.filter(lambda c: c.dtype == dtype)
    cases.kernel_sized = getattr(sig.cases, "kernel_sized", False)
    p = spec.Property(op, f"sensitivity_{target or 'y'}", compares_with_reference(sig), cases)
    for k in LADDER:
        if not runner.check(p, _perturbed(sig, ref, target, k), f"perturbed {k}",
                            device=device, profile=profile, shrink=False).ok:
            return k
    return None


def table(ops: list[str] | None = None, *, profile: str = "ci", device: str = "cpu",
          progress: Callable = lambda line: None) -> str:
    """Markdown: op x output, the smallest k rejected in each dtype ("-": none up to 64)."""
    names = [str(d).removeprefix("torch.") for d in FLOATS]
    lines = ["| op | output | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(FLOATS)]
    for sig in spec.signatures():
        if (ops and sig.op not in ops) or sig.op in NOT_BY_THE_POLICY:
            continue
        for target in (None, *sig.inputs):
            ks = [sensitivity(sig.op, d, target, profile=profile, device=device) for d in FLOATS]
            row = (f"| {sig.op} | {'y' if target is None else 'd' + target} | "
                   + " | ".join("-" if k is None else str(k) for k in ks) + " |")
            progress(row)
            lines.append(row)
    return "\n".join(lines)


