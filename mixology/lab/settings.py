"""Every setting of a lab run, in one table: what ``mixology train --help`` lists, what
``--set`` / ``--grid`` and the app's controls are checked against.

    SETTINGS["norm"]   # Setting(key='norm', config='model', values=('layer', 'rms', 'none'), ...)
    check("norm", "batch")   # ValueError: norm: unknown value 'batch'; known: layer, rms, none
    split({"norm": "rms", "lr": 3e-4})   # ({'norm': 'rms'}, {'lr': 0.0003}): model, train

A setting has the type of its config field and, where the field is a choice, the values it
takes. A value outside them is refused with the model's own reason where it has one
(``check_config``: token_mix is not causal), else with the known values. Combinations
(n_heads not dividing d_model) are the model's ``check_config`` to refuse.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from mixology.lab.model import POSITIONALS, ModelConfig, check_config
from mixology.lab.train import TrainConfig
from mixology.ops.blocks.reference import (
    BLOCK_ACTIVATIONS,
    CAUSAL_MIXERS,
    FEATURE_MAPS,
    NORMS,
    RESIDUALS,
)

TOKENIZERS = ("char", "bpe")

# the values of each setting that is a choice (the model's mixers: the causal ones, and
# softmax attention, which the block makes causal)
CHOICES: dict[str, tuple] = {
    "mixer": ("softmax_attention", *CAUSAL_MIXERS),
    "positional": POSITIONALS,
    "feature_map": tuple(FEATURE_MAPS),
    "norm": NORMS,
    "residual": RESIDUALS,
    "activation": BLOCK_ACTIVATIONS,
    "output_init": ("scaled", "zero"),
    "impl": ("reference", "native", "triton"),
    "optimizer": ("adamw", "muon"),
    "device": ("cpu", "cuda"),
    "dtype": ("float32", "float64", "bfloat16"),
    "tokenizer": TOKENIZERS,
}

HELP = {
    "vocab_size": "tokens in the vocabulary (set by the tokenizer)",
    "context": "tokens a model sees at once",
    "d_model": "the residual stream's width",
    "n_layers": "blocks (depth)",
    "n_heads": "attention heads (must divide d_model)",
    "ff_mult": "the channel mixer's width, in multiples of d_model",
    "mixer": "the token mixer",
    "positional": "position encoding (rope and alibi act inside attention)",
    "feature_map": "linear attention's φ on q and k: none, elu (elu + 1) or relu",
    "norm": "the blocks' norm: LayerNorm, RMSNorm or none",
    "residual": "Pre-LN, Post-LN or Sandwich",
    "activation": "the channel mixer (none: attention-only)",
    "final_norm": "a norm before the unembedding",
    "tie_weights": "the unembedding is the embedding",
    "init_std": "std of the initial weights",
    "output_init": "each branch's output projection: N(0, std/sqrt(2L)) or zero",
    "eps": "the norms' epsilon",
    "impl": "the blocks' implementation",
    "steps": "optimizer steps",
    "batch_size": "windows per micro-batch",
    "grad_accum": "micro-batches per step",
    "lr": "AdamW's peak learning rate",
    "min_lr": "the cosine schedule's floor",
    "warmup": "linear warm-up steps",
    "weight_decay": "decoupled weight decay",
    "beta2": "AdamW's beta2",
    "grad_clip": "gradient-norm clipping (0: none)",
    "optimizer": "AdamW, or Muon for the blocks' matrices",
    "muon_lr": "Muon's peak learning rate",
    "eval_every": "steps between evaluations",
    "eval_windows": "validation windows per evaluation",
    "seed": "weights and batches",
    "device": "where it trains",
    "dtype": "the parameters' dtype",
    "text": "the corpus: a text file, a folder of .txt files, or hf:NAME[:SPLIT[:COLUMN]] "
            "(Hugging Face datasets; none: tiny Shakespeare)",
    "tokenizer": "one token per character, or byte-level BPE trained on the corpus",
    "bpe_vocab": "the BPE vocabulary's size",
    "stats": "per-layer statistics at each evaluation",
    "eval_all": "at the end, the loss over every validation token",
    "sample_tokens": "tokens sampled at the end (0: none)",
}

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "str | None": str}


@dataclass(frozen=True)
class Setting:
    key: str
    config: str  # "model" | "train"
    type: type
    optional: bool  # None is a value too
    default: object
    values: tuple | None  # a choice's values; None: any value of the type
    help: str

    def describe(self) -> str:
        kind = " | ".join(map(str, self.values)) if self.values else self.type.__name__
        if self.optional:
            kind += " | none"
        return f"{self.key} = {kind} (default {self.default}): {self.help}"


def _table() -> dict[str, Setting]:
    out = {}
    for config, cls in (("model", ModelConfig), ("train", TrainConfig)):
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()
            out[f.name] = Setting(f.name, config, _TYPES[f.type], f.type.endswith("None"),
                                  default, CHOICES.get(f.name), HELP[f.name])
    return out


SETTINGS: dict[str, Setting] = _table()


def check(key: str, value):
    """``value`` if ``key`` takes it (an int is a float too); else a ValueError naming the
    known keys or values."""
    s = SETTINGS.get(key)
    if s is None:
        raise ValueError(f"{key}: unknown setting; known: {', '.join(SETTINGS)}")
    if value is None and s.optional:
        return value
    if value is None and s.values and "none" in s.values:
        value = "none"  # the choice "none" (norm=none), which --set and --grid read as None
    if s.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, s.type) or (s.type is int and isinstance(value, bool)):
        raise ValueError(f"{key}: expected {s.type.__name__}, got {value!r}")
    if s.values is not None and value not in s.values:
        if s.config == "model":  # the model's own reason, where it has one
            check_config(ModelConfig(**{key: value}))
        raise ValueError(f"{key}: unknown value {value!r}; known: "
                         f"{', '.join(map(str, s.values))}")
    return value


def split(settings: dict) -> tuple[dict, dict]:
    """(model settings, train settings) of ``{key: value}``, each checked."""
    model, train = {}, {}
    for key, value in settings.items():
        value = check(key, value)
        (model if SETTINGS[key].config == "model" else train)[key] = value
    return model, train


def describe() -> str:
    """One line per setting, model first: ``key = values (default d): meaning``."""
    lines = []
    for config in ("model", "train"):
        lines.append(f"{config} settings:")
        lines += [f"  {s.describe()}" for s in SETTINGS.values() if s.config == config]
    return "\n".join(lines)
