"""A corpus tokenized once into a memory-mapped file (as nanoGPT's prepare.py does).

    corpus = prepare()                                   # tiny Shakespeare, one token a char
    corpus = prepare("books/", "bpe", bpe_vocab=4096)    # every books/*.txt, byte-level BPE
    corpus.train, corpus.val        # int32 numpy memmaps: 90% / 10% of the tokens, in order
    corpus.tokenizer.decode(corpus.tokenizer.encode(s)) == s

- ``text``: None (tiny Shakespeare, shipped), a UTF-8 text file, a folder whose ``*.txt``
  files are read in sorted order and concatenated, or ``hf:NAME[:SPLIT[:COLUMN]]``, a Hugging
  Face ``datasets`` corpus (where the package is installed and the dataset reachable).
- Tokenizers: ``char`` (one token per distinct character of the corpus, sorted) or ``bpe``
  (Hugging Face ``tokenizers``: byte-level BPE trained on the corpus, so any text
  round-trips). ``tokenizer.save(folder)`` / ``load_tokenizer(folder)``: ``tokenizer.json``.
- The text is read in chunks of about 1 MiB and each chunk's ids are appended to the file, so
  memory stays flat whatever the corpus' size; batches read windows from the memmap.
- The split is deterministic: the first 90% of the tokens train, the rest validate.
- Prepared once per corpus (its files' paths, sizes and modification times, or the dataset's
  fingerprint) and tokenizer, in
  ``$MIXOLOGY_CACHE`` (default ``~/.cache/mixology``)``/corpora/<key>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CORPUS = Path(__file__).parent / "corpus" / "tiny_shakespeare.txt"
CHUNK = 1 << 18  # characters read at a time: a few MB of temporaries
TRAIN_FRACTION = 0.9
FORMAT = 1  # bump when the prepared files change meaning


def corpus_files(text: str | Path | None = None) -> list[Path]:
    """The files of a corpus: the shipped one, ``text`` itself, or a folder's ``*.txt``."""
    p = Path(text) if text is not None else CORPUS
    if p.is_dir():
        files = sorted(p.glob("*.txt"))
        if not files:
            raise ValueError(f"text: the folder {str(p)!r} has no .txt files")
        return files
    if not p.is_file():
        raise ValueError(f"text: no such text file or folder {str(p)!r}")
    return [p]


def read_chunks(files: list[Path], chars: int = CHUNK) -> Iterator[str]:
    """The corpus' text in chunks of about ``chars`` characters, each ending at a newline
    (so that no word is split between two chunks) unless a line is longer than 4 x ``chars``
    (memory stays bounded by the chunk size whatever the text)."""
    carry = ""
    for path in files:
        with open(path, encoding="utf-8") as f:
            while block := f.read(chars):
                block = carry + block
                cut = block.rfind("\n") + 1
                if cut == 0 and len(block) < 4 * chars:
                    carry = block
                    continue
                cut = cut or len(block)
                carry = block[cut:]
                yield block[:cut]
    if carry:
        yield carry


@dataclass(frozen=True)
class CharTokenizer:
    """One token per distinct character, in sorted order."""

    chars: str
    kind = "char"

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not text:
            raise ValueError("text: empty, no characters to build a vocabulary from")
        return cls("".join(sorted(set(text))))

    @classmethod
    def train(cls, chunks) -> CharTokenizer:
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        return cls.from_text("".join(seen))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def pieces(self) -> list[str]:
        """The text of each token id."""
        return list(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.ids(text).astype(np.int64))

    def ids(self, text: str) -> np.ndarray:
        """The token ids of ``text`` as int32 (what a prepared corpus stores)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = self._table()
        ids = table[np.minimum(codes, len(table) - 1)]
        if (ids < 0).any():
            unknown = sorted(set(text) - set(self.chars))
            raise ValueError(f"text: characters outside the vocabulary: {''.join(unknown)!r}")
        return ids

    def _table(self) -> np.ndarray:
        """code point -> id, -1 for characters outside the vocabulary (the last entry)."""
        table = np.full(max(map(ord, self.chars)) + 2, -1, dtype=np.int32)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))
        return table

    def decode(self, tokens) -> str:
        return "".join(self.chars[int(t)] for t in tokens)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "tokenizer.json"
        path.write_text(json.dumps({"kind": "char", "chars": self.chars}), encoding="utf-8")
        return path


class BPETokenizer:
    """Byte-level BPE (Hugging Face ``tokenizers``): every text round-trips, whatever its
    characters; ``vocab_size`` ids, the 256 bytes among them."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, chunks, vocab_size: int = 4096) -> BPETokenizer:
        tokenizers = _tokenizers()
        if vocab_size < 257:
            raise ValueError(f"bpe_vocab: at least 257 (the 256 bytes and a merge), "
                             f"got {vocab_size}")
        tok = tokenizers.Tokenizer(tokenizers.models.BPE())
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=vocab_size, show_progress=False,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(chunks, trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pieces(self) -> list[str]:
        return [self.tokenizer.decode([i]) for i in range(self.vocab_size)]

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer.encode(text).ids, dtype=torch.long)

    def ids(self, text: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(text).ids, dtype=np.int32)

    def decode(self, tokens) -> str:
        return self.tokenizer.decode([int(t) for t in tokens])

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "tokenizer.json"
        self.tokenizer.save(str(path))
        return path


def _tokenizers():
    try:
        # optional: only the bpe tokenizer needs it
        import tokenizers
        import tokenizers.decoders
        import tokenizers.models
        import tokenizers.pre_tokenizers
        import tokenizers.trainers
    except ImportError as e:
        raise ValueError("tokenizer: 'bpe' needs Hugging Face tokenizers "
                         "(pip install tokenizers)") from e
    return tokenizers


def load_tokenizer(folder: str | Path) -> CharTokenizer | BPETokenizer:
    """The tokenizer saved in ``folder/tokenizer.json``."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"folder: no tokenizer {str(path)!r}")
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("kind") == "char":
        return CharTokenizer(saved["chars"])
    return BPETokenizer(_tokenizers().Tokenizer.from_file(str(path)))


def train_tokenizer(kind: str, chunks, bpe_vocab: int = 4096):
    if kind == "char":
        return CharTokenizer.train(chunks)
    if kind == "bpe":
        return BPETokenizer.train(chunks, bpe_vocab)
    raise ValueError(f"tokenizer: unknown value {kind!r}; known: char, bpe")


@dataclass
class Corpus:
    tokenizer: CharTokenizer | BPETokenizer
    train: np.ndarray  # int32 memmap
    val: np.ndarray
    folder: Path  # where it is prepared


def cache_root() -> Path:
    return Path(os.environ.get("MIXOLOGY_CACHE") or Path.home() / ".cache" / "mixology")


def _key(identity: list[str], tokenizer: str, bpe_vocab: int) -> str:
    return hashlib.sha256(json.dumps([FORMAT, tokenizer, bpe_vocab if tokenizer == "bpe" else 0,
                                      identity]).encode()).hexdigest()[:16]


def hf_chunks(spec: str) -> tuple[Callable[[], Iterator[str]], str]:
    """A Hugging Face ``datasets`` corpus, ``hf:NAME[:SPLIT[:COLUMN]]`` (split "train" and
    column "text" by default; NAME a folder written by ``save_to_disk`` or anything
    ``load_dataset`` takes): (a function giving its rows' text in chunks, each row followed by
    a newline; the dataset's fingerprint)."""
    name, _, rest = spec[3:].partition(":")
    split, _, column = rest.partition(":")
    split, column = split or "train", column or "text"
    try:
        # optional: only hf: corpora need it
        import datasets
    except ImportError:
        raise ValueError(f"text: {spec!r} needs Hugging Face datasets (pip install datasets)"
                         ) from None
    try:
        if (Path(name) / "dataset_info.json").exists() or (
                Path(name) / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(name)
            ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
        else:
            ds = datasets.load_dataset(name, split=split)
    except Exception as e:  # unreachable hub, unknown name or split: one line, by name
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"text: cannot load {spec!r}: {why}") from None
    if column not in ds.column_names:
        raise ValueError(f"text: {spec!r} has no column {column!r}; columns: "
                         f"{', '.join(ds.column_names)}")

    def chunks() -> Iterator[str]:
        rows, size = [], 0
        for batch in ds.iter(batch_size=1024):
            for row in batch[column]:
                rows.append(row + "\n")
                size += len(row) + 1
                if size >= CHUNK:
                    yield "".join(rows)
                    rows, size = [], 0
        if rows:
            yield "".join(rows)

    return chunks, ds._fingerprint


def _source(text) -> tuple[Callable[[], Iterator[str]], list[str]]:
    """(a function giving the corpus' text in chunks, what identifies its content)."""
    if isinstance(text, str) and text.startswith("hf:"):
        chunks, fingerprint = hf_chunks(text)
        return chunks, [text, fingerprint]
    files = corpus_files(text)
    return (lambda: read_chunks(files)), [
        f"{f.resolve()}\0{f.stat().st_size}\0{f.stat().st_mtime_ns}" for f in files]


def prepare(text: str | Path | None = None, tokenizer: str = "char", *, bpe_vocab: int = 4096,
            cache: str | Path | None = None) -> Corpus:
    """The corpus ``text`` tokenized by ``tokenizer`` (see the module's docstring); the
    second call with the same corpus and tokenizer reads what the first one wrote."""
    chunks, identity = _source(text)
    folder = Path(cache or cache_root()) / "corpora" / _key(identity, tokenizer, bpe_vocab)
    if not (folder / "meta.json").is_file():
        _write(folder, chunks, identity, tokenizer, bpe_vocab)
    meta = json.loads((folder / "meta.json").read_text())
    tokens = np.memmap(folder / "tokens.bin", dtype=np.int32, mode="r", shape=(meta["tokens"],))
    n = int(TRAIN_FRACTION * meta["tokens"])
    return Corpus(load_tokenizer(folder), tokens[:n], tokens[n:], folder)


def _write(folder: Path, chunks, identity: list[str], kind: str, bpe_vocab: int) -> None:
    """Train the tokenizer on the corpus, then append each chunk's ids to tokens.bin; written
    in a temporary folder renamed at the end, so that two processes preparing the same corpus
    at once both end with a whole one."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(kind, chunks(), bpe_vocab)
    tok.save(tmp)
    count = 0
    with open(tmp / "tokens.bin", "wb") as out:
        for chunk in chunks():
            ids = tok.ids(chunk)
            out.write(ids.tobytes())
            count += len(ids)
    if count < 2:
        raise ValueError(f"text: {count} token(s), a corpus needs at least 2")
    (tmp / "meta.json").write_text(json.dumps({
        "corpus": identity, "tokenizer": kind, "vocab_size": tok.vocab_size,
        "tokens": count, "train_fraction": TRAIN_FRACTION}, indent=2))
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: keep its copy
        if not (folder / "meta.json").is_file():
            raise
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
