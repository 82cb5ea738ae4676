"""Data for the lab: text, a character-level tokenizer, batches of random windows.

    text = load_text()                              # tiny Shakespeare, shipped in the package
    tok = CharTokenizer.from_text(text)             # 65 characters
    train, val = split(tok.encode(text))            # 90/10: 1,003,854 and 111,540 tokens
    x, y = batch(train, 12, 64, generator)          # (12, 64) windows and their next tokens
    corpus = prepare.prepare("books/", "bpe")      # any corpus, tokenized once, memory-mapped
    xs, ys = eval_windows(val, 64, 200)             # the same 200 windows for every run

Batches are random contiguous windows drawn from a seeded generator (no DataLoader threads),
evaluation uses fixed windows, so runs compare on the same data. The token arrays are
tensors or numpy arrays (the memory-mapped ones of mixology.lab.prepare); windows are long
tensors either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mixology.lab import prepare
from mixology.lab.prepare import CORPUS, CharTokenizer  # noqa: F401  (re-exported)

IGNORE = -1  # a target that is padding: no loss, no gradient

def load_text(path: str | Path | None = None) -> str:
    """The text of ``path`` (UTF-8; a folder: its ``*.txt`` files in sorted order), or the
    tiny Shakespeare corpus (1,115,394 characters)."""
    return "".join(prepare.read_chunks(prepare.corpus_files(path)))


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
    data = _long(data)
    n = len(data) - 1  # (x, y) pairs
    rows = -(-n // context)
    x = torch.zeros(rows * context, dtype=torch.long)
    y = torch.full((rows * context,), IGNORE, dtype=torch.long)
    x[:n], y[:n] = data[:-1], data[1:]
    return x.view(rows, context), y.view(rows, context)


def _windows(data, starts, context):
    idx = starts[:, None] + torch.arange(context + 1)
    w = _long(data[idx.numpy()] if isinstance(data, np.ndarray) else data[idx])
    return w[:, :-1], w[:, 1:]


def _long(tokens) -> torch.Tensor:
    """Token ids (a tensor or a numpy array) as a long tensor."""
    if isinstance(tokens, np.ndarray):
        return torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    return tokens.long()
