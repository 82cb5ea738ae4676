"""Corpora and tokenizers: folders of text, char and BPE round trips, the memory-mapped
tokens, the split, the cache, and a corpus larger than a memory cap."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixology.lab import data, prepare

SHAKESPEARE = data.load_text()


@pytest.fixture(scope="module")
def bpe():
    """Byte-level BPE, 512 ids, trained on the first 200 kB of tiny Shakespeare."""
    return prepare.BPETokenizer.train([SHAKESPEARE[:200_000]], 512)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_bpe_decode_encode_is_the_identity_on_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=sorted(set(SHAKESPEARE)), max_size=300))
def test_char_decode_encode_is_the_identity_on_its_alphabet(text):
    tok = prepare.CharTokenizer.from_text(SHAKESPEARE)
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text


def test_bpe_compresses_and_its_pieces_are_its_tokens(bpe):
    ids = bpe.encode(SHAKESPEARE[:10_000])
    assert bpe.vocab_size == 512 and len(ids) < 10_000 / 2  # fewer than 2 characters a token
    assert "".join(bpe.pieces[i] for i in ids[:50]) == SHAKESPEARE[:10_000][:len(
        bpe.decode(ids[:50]))]


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet="ab \n", max_size=400), size=st.integers(1, 50))
def test_chunks_join_to_the_text_and_end_at_newlines(tmp_path_factory, text, size):
    path = tmp_path_factory.mktemp("chunks") / "t.txt"
    path.write_text(text, encoding="utf-8", newline="")
    chunks = list(prepare.read_chunks([path], size))
    assert "".join(chunks) == text
    assert all(c.endswith("\n") or len(c) >= 4 * size for c in chunks[:-1])
    assert all(len(c) <= 5 * size for c in chunks)


def test_a_folder_is_its_txt_files_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("second\n")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "notes.md").write_text("not a corpus file\n")
    assert data.load_text(tmp_path) == "first\nsecond\n"
    corpus = prepare.prepare(tmp_path, cache=tmp_path / "cache")
    tokens = np.concatenate([corpus.train, corpus.val])
    assert corpus.tokenizer.decode(tokens) == "first\nsecond\n"
    assert len(corpus.train) == int(0.9 * len(tokens))  # the first 90% train


def test_prepared_once_and_again_when_the_corpus_changes(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be\n" * 50)
    first = prepare.prepare(text, "bpe", bpe_vocab=300, cache=tmp_path / "cache")
    written = (first.folder / "tokens.bin").stat().st_mtime_ns
    again = prepare.prepare(text, "bpe", bpe_vocab=300, cache=tmp_path / "cache")
    assert again.folder == first.folder
    assert (again.folder / "tokens.bin").stat().st_mtime_ns == written
    assert json.loads((first.folder / "meta.json").read_text())["tokenizer"] == "bpe"
    text.write_text("that is the question\n" * 50)
    changed = prepare.prepare(text, "bpe", bpe_vocab=300, cache=tmp_path / "cache")
    assert changed.folder != first.folder
    assert changed.tokenizer.decode(np.concatenate([changed.train, changed.val])) == (
        "that is the question\n" * 50)
    assert prepare.prepare(text, "char", cache=tmp_path / "cache").folder != changed.folder


def test_saved_tokenizers_load_as_they_were(tmp_path, bpe):
    char = prepare.CharTokenizer.from_text(SHAKESPEARE)
    for tok in (char, bpe):
        folder = tmp_path / tok.kind
        folder.mkdir()
        tok.save(folder)
        loaded = prepare.load_tokenizer(folder)
        assert loaded.vocab_size == tok.vocab_size
        assert loaded.encode(SHAKESPEARE[:2000]).tolist() == tok.encode(SHAKESPEARE[:2000]).tolist()


def test_bad_corpora_and_tokenizers(tmp_path):
    with pytest.raises(ValueError, match="text: no such text file or folder"):
        prepare.corpus_files(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="has no .txt files"):
        prepare.corpus_files(tmp_path)
    (tmp_path / "one.txt").write_text("x")
    with pytest.raises(ValueError, match="a corpus needs at least 2"):
        prepare.prepare(tmp_path / "one.txt", cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="tokenizer: unknown value 'word'; known: char, bpe"):
        prepare.train_tokenizer("word", ["abc"])
    with pytest.raises(ValueError, match="bpe_vocab: at least 257"):
        prepare.BPETokenizer.train(["abc"], 100)
    with pytest.raises(ValueError, match="folder: no tokenizer"):
        prepare.load_tokenizer(tmp_path)


CHILD = textwrap.dedent("""
    import json, resource, sys
    from mixology.lab.model import ModelConfig
    from mixology.lab.train import TrainConfig, train
    run = train(ModelConfig(context=32, d_model=16, n_layers=1, n_heads=2, ff_mult=1),
                TrainConfig(steps=4, batch_size=4, eval_every=2, eval_windows=8, text=sys.argv[1],
                            eval_all=False, stats=False, sample_tokens=0),
                sys.argv[2], progress=False)
    print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "best_val": run.best_val}))
""")

CAP_MB = 8


def test_a_corpus_four_times_a_memory_cap_trains_within_it(tmp_path):
    """The same tiny run on a 1 MB corpus and on a 32 MB one (4 x the cap): preparing and
    training the large one needs less than CAP_MB more resident memory than the small one."""
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text(SHAKESPEARE, encoding="utf-8")
    with open(large, "w", encoding="utf-8") as f:
        for _ in range(4 * CAP_MB * 2 ** 20 // len(SHAKESPEARE) + 1):
            f.write(SHAKESPEARE)
    assert large.stat().st_size >= 4 * CAP_MB * 2 ** 20
    env = {**os.environ, "MIXOLOGY_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    rss = {}
    for corpus in (small, large):
        out = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(tmp_path / corpus.stem)],
                             capture_output=True, text=True, env=env, check=True)
        rss[corpus.stem] = json.loads(out.stdout.strip().splitlines()[-1])["rss_kb"] / 1024
    grown = rss["large"] - rss["small"]
    assert grown < CAP_MB, f"peak resident memory grew {grown:.1f} MB with the corpus ({rss})"
    sizes = [json.loads(p.read_text())["tokens"] for p in (tmp_path / "cache" / "corpora").glob(
        "*/meta.json")]
    assert max(sizes) >= 4 * CAP_MB * 2 ** 20  # one token a character


def test_a_hugging_face_dataset_made_here_trains(tmp_path):
    """``hf:`` corpora: a dataset saved by ``datasets`` (the hubs cannot be reached here), its
    default split and column, then another split and column of a DatasetDict."""
    datasets = pytest.importorskip("datasets")
    lines = SHAKESPEARE[:20_000].splitlines()
    datasets.Dataset.from_dict({"text": lines}).save_to_disk(str(tmp_path / "plain"))
    corpus = prepare.prepare(f"hf:{tmp_path / 'plain'}", cache=tmp_path / "cache")
    tokens = np.concatenate([corpus.train, corpus.val])
    assert corpus.tokenizer.decode(tokens) == "".join(line + "\n" for line in lines)
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["unused"] * 4}),
                          "validation": datasets.Dataset.from_dict({"body": lines[:50]})}
                         ).save_to_disk(str(tmp_path / "dict"))
    spec = f"hf:{tmp_path / 'dict'}:validation:body"
    corpus = prepare.prepare(spec, "bpe", bpe_vocab=300, cache=tmp_path / "cache")
    assert corpus.tokenizer.decode(np.concatenate([corpus.train, corpus.val])) == "".join(
        line + "\n" for line in lines[:50])
    with pytest.raises(ValueError, match="has no column 'text'; columns: body"):
        prepare.prepare(f"hf:{tmp_path / 'dict'}:validation", cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="text: cannot load 'hf:"):
        prepare.prepare(f"hf:{tmp_path / 'missing'}", cache=tmp_path / "cache")

    from mixology.lab.model import ModelConfig
    from mixology.lab.train import TrainConfig, train

    run = train(ModelConfig(context=16, d_model=16, n_layers=1, n_heads=2, ff_mult=1),
                TrainConfig(steps=3, batch_size=2, eval_every=3, eval_windows=2, stats=False,
                            sample_tokens=5, text=f"hf:{tmp_path / 'plain'}"),
                tmp_path / "run", progress=False)
    assert run.metrics[-1]["step"] == 3 and (tmp_path / "run" / "samples.txt").read_text()
