"""Step-by-step walkthroughs of the blocks, on labelled tensors, in plain text.

    python -m mixology explain token_mixer [--B 2 --T 4 --D 8 --H 4]
    python -m mixology explain ffn | swiglu [--D 768]
    python -m mixology explain attention [--T 512 --D 768]

Every entry of the token mixer's input carries a label, token a..d and feature 1..8 (``b2``
is feature 2 of token b), and every step is run on it, so the printout shows where each value
goes. The steps are einops written here to be read; the result is checked against the
registered reference op, and the seed's "permute back" version is run on the same tensor and
through the spec. Parameter counts are counted on the real modules; FLOPs with torch's
FlopCounterMode. Deterministic: the same arguments print the same text.
"""

from __future__ import annotations

import inspect
import string

import torch
from einops import rearrange

from mixology import registry, spec
from mixology.bench.sweep import HEAD_DIM_ATTENTION, flop_counts
from mixology.nn import FeedForward
from mixology.ops import mutants as registered_mutants
from mixology.ops.token_mix import mutants
from mixology.verify import runner

TOPICS = ("token_mixer", "ffn", "swiglu", "attention")


def _labels(B: int, T: int, D: int) -> tuple[torch.Tensor, list[str]]:
    """x (B, T, D) float64 holding each entry's index, and the index's label."""
    if T > 26:
        raise ValueError(f"T: at most 26 labelled tokens (a..z), got {T}")
    names = [(f"{b}:" if b else "") + f"{string.ascii_lowercase[t]}{f + 1}"
             for b in range(B) for t in range(T) for f in range(D)]
    return torch.arange(B * T * D, dtype=torch.float64).reshape(B, T, D), names


def _row(values: torch.Tensor, names: list[str], group: int = 0) -> str:
    cells = [names[int(v)] for v in values.flatten()]
    if group:
        cells = ["[" + " ".join(cells[i:i + group]) + "]" for i in range(0, len(cells), group)]
    return " ".join(cells)


def token_mixer(B: int = 2, T: int = 4, D: int = 8, H: int = 4) -> str:

    if H < 1 or D % H:
        raise ValueError(f"H: {H} heads must divide D = {D}")
    x, names = _labels(B, T, D)
    d = D // H
    out = [f"token_mixer on x: (B={B}, T={T}, D={D}), H={H} heads of d = D/H = {d}",
           f"entries labelled token a..{string.ascii_lowercase[T - 1]}, feature 1..{D}"
           + (" (batch b > 0: a 'b:' prefix; batch 0 shown)" if B > 1 else ""), "",
           "input x[0], one line per token:"]
    out += [f"  token {string.ascii_lowercase[t]}: {_row(x[0, t], names)}" for t in range(T)]
    split = rearrange(x, "b t (h d) -> b t h d", h=H)
    out += ["", f"1. split each token into H heads      'b t (h d) -> b t h d'   "
            f"{tuple(split.shape)}"]
    out += [f"  token {string.ascii_lowercase[t]}: {_row(split[0, t], names, d)}"
            for t in range(T)]
    major = rearrange(split, "b t h d -> b h t d")
    out += ["", f"2. heads first (head-major)            'b t h d -> b h t d'     "
            f"{tuple(major.shape)}"]
    out += [f"  head {h}: {_row(major[0, h], names, d)}" for h in range(H)]
    flat = rearrange(major, "b h t d -> b (h t d)")
    out += ["", f"3. flatten                             'b h t d -> b (h t d)'   "
            f"{tuple(flat.shape)}", f"  {_row(flat[0], names)}"]
    mixed = flat.reshape(B, T, D)
    out += ["", f"4. cut back into T tokens of D         reshape                  "
            f"{tuple(mixed.shape)}"]
    for t in range(T):
        src = sorted({names[int(v)].rstrip("0123456789") for v in mixed[0, t]},
                     key=lambda s: (len(s), s))
        heads = sorted({(int(v) % D) // d for v in mixed[0, t]})
        out.append(f"  out {t}: {_row(mixed[0, t], names)}   <- tokens {','.join(src)}, "
                   f"head{'s' if len(heads) > 1 else ''} {','.join(map(str, heads))}")
    ref = registry.get("token_mix", "reference").fn(x, H)
    assert torch.equal(ref, mixed), "the walkthrough disagrees with the reference"
    out += ["  = mixology's token_mix reference on this tensor (checked)."]
    if H == T:
        out.append("  H == T: output token h is head h of every input token: every output "
                   "token sees every input token.")
    out += ["", "5. residual and LayerNorm              LayerNorm(x + mix(x))    "
            f"{tuple(mixed.shape)}",
            "  out 0 = LayerNorm(" + " ".join(
                f"{names[int(a)]}+{names[int(b)]}" for a, b in zip(x[0, 0], mixed[0, 0],
                                                                   strict=True)) + ")",
            "  (the residual adds each position's own input: the mix is a permutation, the "
            "LayerNorm is over each token's D features)"]
    back = mutants.permute_back(x, H)
    unflat = rearrange(flat, "b (h t d) -> b h t d", h=H, t=T)
    out += ["", "The seed's version: split -> permute -> flatten -> unflatten -> permute back",
            f"  unflatten 'b (h t d) -> b h t d' {tuple(unflat.shape)}, permute back "
            f"'b h t d -> b t (h d)' {tuple(x.shape)}:"]
    out += [f"  out {t}: {_row(back[0, t], names)}" for t in range(T)]
    same = torch.equal(back, x)
    out.append(f"  output == input: {same}. It mixes nothing: each permutation undoes the "
               "other." if same else "  output != input")
    out += ["  rejected by: " + ", ".join(_rejecting("token_mix", "permute_back"))]
    return "\n".join(out) + "\n"


def _rejecting(op: str, mutant: str) -> list[str]:
    """The spec's properties of ``op`` that reject the registered mutant (a few examples
    each, small sizes, on CPU)."""

    (m,) = [m for m in registered_mutants(op, "cpu") if m.name == mutant]
    return [p.name for p in spec.properties(op)
            if p.kind == "correctness"
            and not runner.check(p, m.fn, f"mutant:{mutant}", device="cpu", shrink=False,
                                 profile="ci", sizes="small").ok]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ffn(D: int = 768) -> str:

    F_ = 4 * D
    ff = FeedForward(D, F_, device="meta")
    ln = torch.nn.LayerNorm(D, device="meta")
    rows = [("W1 (D x 4D)", "4D²", D * F_), ("b1", "4D", F_), ("W2 (4D x D)", "4D²", F_ * D),
            ("b2", "D", D), ("LayerNorm weight + bias", "2D", 2 * D)]
    total = _count(ff) + _count(ln)
    out = [f"ffn (feed_forward + its LayerNorm), D = {D}",
           f"  x (B, T, D={D}) -> LayerNorm -> x W1 + b1: (B, T, 4D={F_}) -> act -> "
           f"W2 + b2: (B, T, D={D})", ""]
    out += [f"  {name:<26} {form:>4} = {n:>12,}  {100 * n / total:5.1f}%" for name, form, n in rows]
    out += [f"  {'total':<26} {'':>4}   {total:>12,}  = 8D² + 7D = {8 * D * D + 7 * D:,} "
            f"({'matches' if total == 8 * D * D + 7 * D else 'DIFFERS'}; counted on "
            "mixology.FeedForward + nn.LayerNorm)"]
    return "\n".join(out) + "\n"


def swiglu(D: int = 768) -> str:

    F_ = 4 * D
    count = 3 * D * F_ + 2 * D
    shapes = {"w_gate": (D, F_), "w_up": (D, F_), "w_down": (F_, D)}
    x = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(0))
    y = registry.get("swiglu", "reference").fn(x, torch.ones(8, 32), torch.ones(8, 32),
                                                torch.ones(32, 8))
    out = [f"swiglu (no biases) + its LayerNorm, D = {D}, hidden 4D = {F_}",
           f"  x (B, T, D) -> silu(x W_gate) * (x W_up): (B, T, 4D) -> W_down: (B, T, D)"
           f"   (reference runs: {tuple(x.shape)} -> {tuple(y.shape)})", ""]
    for name, (a, b) in shapes.items():
        out.append(f"  {name:<8} ({a} x {b}) {'4D²':>4} = {a * b:>12,}")
    out += [f"  {'LayerNorm':<8} {'2D':>20} = {2 * D:>12,}",
            f"  {'total':<8} {'':>20}   {count:>12,} = 12D² + 2D (the seed's figure holds "
            "without biases)",
            f"  vs ffn's 8D² + 7D = {8 * D * D + 7 * D:,}: 1.5x the parameters at the same "
            f"hidden width; hidden 8D/3 = {8 * D // 3} keeps them equal (LLaMA's choice)."]
    return "\n".join(out) + "\n"


def attention(T: int = 512, D: int = 768) -> str:

    f = flop_counts(T, D)
    H = D // HEAD_DIM_ATTENTION
    seed_ratio = T * T * D + 4 * T * D * D  # the seed's (T + 4D)/8 x 8·T·D
    macs = {"QKV projections": 3 * T * D * D, "scores Q Kᵀ": T * T * D,
            "weights x V": T * T * D, "output projection": T * D * D}
    itemized = sum(macs.values())
    out = [f"attention vs token_mixer cost, one sequence (B = 1), T = {T}, D = {D}, "
           f"{H} heads of {HEAD_DIM_ATTENTION}",
           "  the seed's table rows, as multiply-adds, and FlopCounterMode's count "
           "(a multiply-add = 2 FLOPs):", ""]
    out += [f"  {name:<18} {n:>15,} multiply-adds" for name, n in macs.items()]
    out += [f"  {'sum':<18} {itemized:>15,} multiply-adds = {2 * itemized:,} FLOPs; "
            f"counted on the attention block: {f['attention_block']:,} "
            f"({'equal' if 2 * itemized == f['attention_block'] else 'DIFFERENT'})",
            f"  {'SDPA alone':<18} counted: {f['sdpa']:,} FLOPs",
            f"  {'token_mixer':<18} counted: 0 matmul FLOPs (a permutation, a residual add, "
            f"a LayerNorm: ~8·T·D = {f['mixer']:,} elementwise ops, bound by bytes moved)",
            "", "where the seed's formulas are wrong:",
            f"  its total '~B×T²×D' = {T * T * D:,} drops the projections "
            f"(4·T·D² = {4 * T * D * D:,}, {4 * D / T:.0f}x the T² term at T={T}) and one of "
            f"its own two T² rows",
            f"  its '~448x' is (T²D + 4TD²) / 8TD = (T + 4D)/8 = {seed_ratio / f['mixer']:.0f}x: "
            f"one T² row short and in multiply-adds; counted FLOPs over the mixer's ops: "
            f"{f['attention_block'] / f['mixer']:.0f}x (block), "
            f"{f['sdpa'] / f['mixer']:.0f}x (SDPA alone)",
            "  the mixer's 8·T·D is right in order: it does far fewer FLOPs, but its speed is "
            "set by bytes, so the FLOP ratio is not its speed-up"]
    return "\n".join(out) + "\n"


def explain(topic: str, **kw) -> str:
    if topic not in TOPICS:
        raise ValueError(f"topic: expected one of {TOPICS}, got {topic!r}")
    fn = {"token_mixer": token_mixer, "ffn": ffn, "swiglu": swiglu, "attention": attention}[topic]

    accepted = inspect.signature(fn).parameters
    unknown = sorted(k for k, v in kw.items() if v is not None and k not in accepted)
    if unknown:
        raise ValueError(f"--{unknown[0]}: not an option of 'explain {topic}' "
                         f"(options: {', '.join('--' + p for p in accepted)})")
    return fn(**{k: v for k, v in kw.items() if v is not None})
