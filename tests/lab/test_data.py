"""The lab's data: the shipped corpus, the tokenizer, the split and the windows."""

from pathlib import Path

import pytest
import torch

from mixology.lab import data


def test_the_corpus_ships_with_the_package_and_splits_90_10():
    text = data.load_text()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    tok = data.CharTokenizer.from_text(text)
    assert tok.vocab_size == 65
    train, val = data.split(tok.encode(text))
    assert (len(train), len(val)) == (1_003_854, 111_540)
    assert tok.decode(train[:14]) == "First Citizen:"


def test_windows_are_next_token_pairs_and_seeded():
    tokens = torch.arange(1000)
    x, y = data.batch(tokens, 8, 16, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (8, 16) and torch.equal(y, x + 1)  # targets shifted by one
    x2, _ = data.batch(tokens, 8, 16, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2)
    e1, _ = data.eval_windows(tokens, 16, 5)
    e2, _ = data.eval_windows(tokens, 16, 5)
    assert torch.equal(e1, e2) and int(e1.max()) < 1000


def test_own_text_and_bad_input():
    with pytest.raises(ValueError, match="text: no such text file"):
        data.load_text(Path("/no/such/file.txt"))
    tok = data.CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="text: characters outside the vocabulary: 'z'"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="context"):
        data.batch(torch.arange(5), 2, 5, torch.Generator())
    with pytest.raises(ValueError, match="train_fraction"):
        data.split(torch.arange(5), 1.0)
