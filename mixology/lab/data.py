"""Data for the lab: text, a character-level tokenizer, batches of random windows.

    text = load_text()                              # tiny Shakespeare, shipped in the package
    tok = CharTokenizer.from_text(text)             # 65 characters
    train, val = split(tok.encode(text))            # 90/10: 1,003,854 and 111,540 tokens
    x, y = batch(train, 12, 64, generator)          # (12, 64) windows and their next tokens
    xs, ys = eval_windows(val, 64, 200)             # the same 200 windows for every run

Batches are random contiguous windows drawn from a seeded generator (no DataLoader threads),
evaluation uses fixed windows, so runs compare on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

IGNORE = -1  # a target that is padding: no loss, no gradient

CORPUS = Path(__file__).parent / "corpus" / "tiny_shakespeare.txt"


def load_text(path: str | Path | None = None) -> str:
    """The text of ``path`` (UTF-8), or the tiny Shakespeare corpus (1,115,394 characters)."""
    p = Path(path) if path is not None else CORPUS
    if not p.is_file():
        raise ValueError(f"path: no such text file {str(p)!r}")
    return p.read_text(encoding="utf-8")


@dataclass(frozen=True)
class CharTokenizer:
    """One token per distinct character, in sorted order."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not text:
            raise ValueError("text: empty, no characters to build a vocabulary from")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text: characters outside the vocabulary: {''.join(unknown)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, tokens) -> str:
        return "".join(self.chars[int(t)] for t in tokens)


def split(tokens: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation): the first ``train_fraction`` of the tokens and the rest."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction: expected in (0, 1), got {train_fraction}")
    n = int(train_fraction * len(tokens))
    return tokens[:n], tokens[n:]


def _check_windows(data: torch.Tensor, context: int) -> None:
    if context < 1 or len(data) <= context:
        raise ValueError(f"context: {context} needs more than {context} tokens, "
                         f"the data has {len(data)}")


def batch(data: torch.Tensor, batch_size: int, context: int,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``context`` tokens (x) and the tokens after each (y:
    x shifted by one), starts drawn from ``generator``."""
    _check_windows(data, context)
    starts = torch.randint(len(data) - context, (batch_size,), generator=generator)
    return _windows(data, starts, context)


def eval_windows(data: torch.Tensor, context: int, n: int, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows at starts fixed by ``seed``: every run evaluates on the same ones."""
    _check_windows(data, context)
    g = torch.Generator().manual_seed(seed)
    return _windows(data, torch.randint(len(data) - context, (n,), generator=g), context)


def padded_windows(data: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every token of ``data`` once: consecutive windows of ``context`` tokens (x) and the
    tokens after them (y); the last window is padded, x with token 0 and y with ``IGNORE``
    (no loss), so a split is evaluated exactly, whatever its length."""
    if context < 1 or len(data) < 2:
        raise ValueError(f"data: needs at least 2 tokens, has {len(data)}")
    n = len(data) - 1  # (x, y) pairs
    rows = -(-n // context)
    x = torch.zeros(rows * context, dtype=data.dtype)
    y = torch.full((rows * context,), IGNORE, dtype=data.dtype)
    x[:n], y[:n] = data[:-1], data[1:]
    return x.view(rows, context), y.view(rows, context)


def _windows(data, starts, context):
    idx = starts[:, None] + torch.arange(context + 1)
    w = data[idx]
    return w[:, :-1], w[:, 1:]
