"""Training a lab model (as plain as nanoGPT's train.py).

    run = train(preset("shakespeare-char-cpu"), TrainConfig(steps=2000), out="runs/a")

- AdamW, or Muon (``torch.optim.Muon``) for the blocks' hidden 2-D weight matrices with AdamW
  for embeddings, unembedding, gains and biases; every parameter in exactly one group.
- Cosine learning rate with linear warm-up, gradient clipping (the pre-clip norm and whether
  it clipped are recorded), gradient accumulation, bf16 autocast on CUDA.
- Evaluation every ``eval_every`` steps on fixed windows; the best validation loss is
  checkpointed (``best.pt``), the latest state too (``last.pt``), and ``resume=True`` goes on
  from it: on CPU, a run stopped at step k and resumed gives the same losses bit for bit.
- The corpus (a text file, a folder of them, a datasets corpus) is tokenized once, by
  characters or BPE, into a memory-mapped file (mixology.lab.prepare); batches read windows
  from it.
- One folder a run: ``config.json``, ``tokenizer.json``, ``metrics.jsonl`` (step, train/val
  loss, lr, grad norm, clipped, tokens/s, elapsed; at the end the loss over every validation
  token), ``best.pt``, ``last.pt``, ``samples.txt``.
- Distributed: under ``torchrun --nproc_per_node N`` the same trainer runs
  DistributedDataParallel (gloo on CPU, nccl on CUDA). Every rank draws the same global batch
  of ``N x batch_size`` windows from the shared generator and trains on its slice, so N
  processes take the steps one process takes on the concatenated batch; rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mixology.lab import data, prepare, tracing
from mixology.lab.model import CausalLM, ModelConfig, config_from_dict


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 12
    grad_accum: int = 1  # micro-batches of batch_size per optimizer step
    lr: float = 1e-3  # AdamW's peak learning rate
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0: no clipping
    optimizer: str = "adamw"  # adamw | muon
    muon_lr: float = 0.02  # Muon's peak learning rate (the same schedule)
    eval_every: int = 250
    eval_windows: int = 200
    seed: int = 1337
    device: str = "cpu"
    dtype: str = "float32"  # the parameters' dtype (float64: the tests' exact comparisons)
    text: str | None = None  # a text file, a folder of .txt files, hf:NAME; None: Shakespeare
    tokenizer: str = "char"  # char | bpe (byte-level BPE trained on the corpus)
    bpe_vocab: int = 4096
    stats: bool = True  # per-layer statistics at each evaluation, into stats.jsonl
    eval_all: bool = True  # at the end, the loss over every validation token (val_loss_all)
    sample_tokens: int = 300  # at the end, a sample of this many characters (0: none)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return config_from_dict(cls, d)


# training settings that go with the model presets (nanoGPT's shakespeare-char recipes)
TRAIN_PRESETS = {
    "shakespeare-char": dict(steps=5000, batch_size=64, lr=1e-3, min_lr=1e-4, warmup=100,
                             eval_every=250, device="cuda"),
    "shakespeare-char-cpu": dict(steps=2000, batch_size=12, lr=1e-3, min_lr=1e-4, warmup=100,
                                 eval_every=250),
}


def lr_at(step: int, peak: float, cfg: TrainConfig) -> float:
    """Linear warm-up from peak/warmup to peak over ``warmup`` steps, then cosine to
    ``peak · min_lr/lr`` at the last step."""
    floor = peak * cfg.min_lr / cfg.lr
    if step < cfg.warmup:
        return peak * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def param_groups(model: CausalLM, cfg: TrainConfig) -> dict[str, list]:
    """{"muon": [...], "adamw_decay": [...], "adamw_no_decay": [...]}: Muon takes the blocks'
    2-D weights (with optimizer="muon"); embeddings and unembedding take AdamW with decay,
    gains and biases AdamW without."""
    groups: dict[str, list] = {"muon": [], "adamw_decay": [], "adamw_no_decay": []}
    for name, p in model.named_parameters():
        hidden = name.startswith("blocks.") and p.ndim == 2
        if hidden and cfg.optimizer == "muon":
            groups["muon"].append((name, p))
        elif p.ndim >= 2:
            groups["adamw_decay"].append((name, p))
        else:
            groups["adamw_no_decay"].append((name, p))
    return groups


def make_optimizers(model: CausalLM, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    if cfg.optimizer not in ("adamw", "muon"):
        raise ValueError(f"optimizer: expected 'adamw' or 'muon', got {cfg.optimizer!r}")
    g = param_groups(model, cfg)
    adamw = torch.optim.AdamW(
        [{"params": [p for _, p in g["adamw_decay"]], "weight_decay": cfg.weight_decay},
         {"params": [p for _, p in g["adamw_no_decay"]], "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, cfg.beta2))
    adamw.peak = cfg.lr
    opts = [adamw]
    if g["muon"]:
        muon = torch.optim.Muon([p for _, p in g["muon"]], lr=cfg.muon_lr,
                                weight_decay=cfg.weight_decay, adjust_lr_fn="match_rms_adamw")
        muon.peak = cfg.muon_lr
        opts.append(muon)
    check_groups(model, opts)
    return opts


def check_groups(model, opts) -> None:
    """Every parameter of the model in exactly one optimizer group; else a ValueError that
    names it."""
    seen: dict[int, int] = {}
    for o in opts:
        for group in o.param_groups:
            for p in group["params"]:
                seen[id(p)] = seen.get(id(p), 0) + 1
    for name, p in model.named_parameters():
        if seen.get(id(p), 0) != 1:
            raise ValueError(f"parameter {name} is in {seen.get(id(p), 0)} optimizer groups; "
                             "every parameter must be in exactly one")


@dataclass
class Run:
    out: Path
    model: CausalLM
    metrics: list[dict]
    best_val: float


def _progress(step, total, loss, tps, start, stream=sys.stderr):
    elapsed = time.perf_counter() - start
    eta = elapsed / max(step, 1) * (total - step)
    line = (f"step {step}/{total} loss {loss:.4f} {tps:,.0f} tok/s "
            f"elapsed {elapsed:.0f}s eta {eta:.0f}s")
    if stream.isatty():
        fill = int(24 * step / max(total, 1))
        stream.write(f"\r[{'#' * fill}{'.' * (24 - fill)}] {line}")
        if step == total:
            stream.write("\n")
    else:
        stream.write(line + "\n")
    stream.flush()


@torch.no_grad()
def evaluate(model, windows, cfg: TrainConfig) -> float:
    """Mean loss over ``windows`` (x, y), each target counted once (padding, ``IGNORE``,
    not at all)."""
    model.eval()
    xs, ys = windows
    total, count = 0.0, 0
    for i in range(0, len(xs), cfg.batch_size):
        y = ys[i:i + cfg.batch_size]
        n = int((y != data.IGNORE).sum())
        with _autocast(cfg):
            _, loss = model(xs[i:i + cfg.batch_size].to(cfg.device), y.to(cfg.device))
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / count


def _autocast(cfg):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.device.startswith("cuda"))


def accumulate(model, micro_batches, cfg: TrainConfig) -> float:
    """Forward and backward over ``micro_batches`` [(x, y), ...], each loss divided by their
    number k, so the gradients are those of one batch made of all of them; the mean loss.
    A DistributedDataParallel model averages over ranks once, on the last micro-batch."""
    k, total = len(micro_batches), 0.0
    for i, (x, y) in enumerate(micro_batches):
        sync = i == k - 1 or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if sync else model.no_sync(), _autocast(cfg):
            _, loss = model(x.to(cfg.device), y.to(cfg.device))
        (loss / k).backward()
        total += float(loss.detach())
    return total / k


def load_checkpoint(path: Path, model, opts, gen: torch.Generator) -> tuple[int, float]:
    """Restore the model, every optimizer's state and the batch generator from
    ``last.pt``; (step, best validation loss)."""
    state = torch.load(path, weights_only=False, map_location=next(model.parameters()).device)
    model.load_state_dict(state["model"])
    for o, s in zip(opts, state["optimizers"], strict=True):
        o.load_state_dict(s)
    gen.set_state(state["generator"])
    return state["step"], state["best_val"]


def distributed(cfg: TrainConfig) -> tuple[int, int, str]:
    """(rank, world size, device) from torchrun's environment (WORLD_SIZE, RANK,
    LOCAL_RANK, MASTER_ADDR/PORT), starting the process group once; (0, 1, cfg.device)
    without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, cfg.device

    cuda = cfg.device.startswith("cuda")
    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else cfg.device
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), world, device


def train(model_cfg: ModelConfig, cfg: TrainConfig, out: str | Path, *, resume: bool = False,
          stop_at: int | None = None, progress: bool = True) -> Run:
    """Train ``model_cfg`` by ``cfg`` into the folder ``out``. ``resume``: go on from
    ``out/last.pt``; ``stop_at``: stop after that step (as if interrupted; resume later), as
    a file ``out/STOP`` does at the step it appears."""
    out = Path(out)
    rank, world, device = distributed(cfg)
    if device != cfg.device:
        cfg = TrainConfig.from_dict({**asdict(cfg), "device": device})
    lead = rank == 0  # writes the run folder
    if lead:
        out.mkdir(parents=True, exist_ok=True)
    corpus = prepare.prepare(cfg.text, cfg.tokenizer, bpe_vocab=cfg.bpe_vocab)
    tok, train_tokens, val_tokens = corpus.tokenizer, corpus.train, corpus.val
    if model_cfg.vocab_size != tok.vocab_size:
        model_cfg = ModelConfig.from_dict({**model_cfg.to_dict(), "vocab_size": tok.vocab_size})
    torch.manual_seed(cfg.seed)
    # drawn in float32 whatever the dtype, so a float64 run starts from the same weights
    model = CausalLM(model_cfg, device=cfg.device).to(getattr(torch, cfg.dtype))
    opts = make_optimizers(model, cfg)
    stepper = model
    if world > 1:
        stepper = DistributedDataParallel(model)
    gen = torch.Generator().manual_seed(cfg.seed)
    val_windows = data.eval_windows(val_tokens, model_cfg.context, cfg.eval_windows, seed=1)
    train_windows = data.eval_windows(train_tokens, model_cfg.context, cfg.eval_windows, seed=2)
    step, best, metrics = 0, math.inf, []
    if resume:
        step, best = load_checkpoint(out / "last.pt", model, opts, gen)
        metrics = [row for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                   if row["step"] <= step]
    elif lead:
        (out / "config.json").write_text(json.dumps(
            {"model": model_cfg.to_dict(), "train": asdict(cfg), "world_size": world}, indent=2))
        tok.save(out)
    if lead:
        with open(out / "metrics.jsonl", "w") as f:
            for m in metrics:
                f.write(json.dumps(m) + "\n")
    probe = val_windows[0][:8]  # the statistics' fixed batch
    clipped, stats_s = sum(m["clipped"] for m in metrics), 0.0
    if lead:  # a resumed run keeps the statistics up to its step
        path = out / "stats.jsonl"
        rows = (map(json.loads, path.read_text().splitlines()) if resume and path.exists()
                else [])
        path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= step))
    start = time.perf_counter()
    tokens_per_step = cfg.batch_size * cfg.grad_accum * model_cfg.context * world
    mine = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
    while step < cfg.steps and (stop_at is None or step < stop_at):
        lrs = [lr_at(step, o.peak, cfg) for o in opts]
        for o, lr in zip(opts, lrs, strict=True):
            for group in o.param_groups:
                group["lr"] = lr
        t0 = time.perf_counter()
        micro = []
        for _ in range(cfg.grad_accum):  # the global batch, then this rank's rows
            x, y = data.batch(train_tokens, cfg.batch_size * world, model_cfg.context, gen)
            micro.append((x[mine], y[mine]))
        loss = accumulate(stepper, micro, cfg)
        if world > 1:
            mean = torch.tensor([loss], dtype=torch.float64, device=cfg.device)
            dist.all_reduce(mean)
            loss = float(mean) / world
        evaluating = (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps
        t1 = time.perf_counter()
        grads = tracing.grad_rms(model) if cfg.stats and evaluating else None
        grads_s = time.perf_counter() - t1
        params = [p for p in model.parameters() if p.grad is not None]
        norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip
                                                    else math.inf))
        for o in opts:
            o.step()
            o.zero_grad(set_to_none=True)
        step += 1
        tps = tokens_per_step / (time.perf_counter() - t0)
        row = {"step": step, "train_loss": loss, "lr": lrs[0],
               "grad_norm": norm, "clipped": bool(cfg.grad_clip and norm > cfg.grad_clip),
               "tokens_per_s": tps, "elapsed": time.perf_counter() - start}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row["val_loss"] = evaluate(model, val_windows, cfg)
            row["eval_train_loss"] = evaluate(model, train_windows, cfg)
            if row["val_loss"] < best:
                best = row["val_loss"]
                if lead:
                    torch.save({"model": model.state_dict(), "config": model_cfg.to_dict(),
                                "step": step, "val_loss": best},
                               out / "best.pt")
        if step == cfg.steps and cfg.eval_all:  # every validation token once
            row["val_loss_all"] = evaluate(
                model, data.padded_windows(val_tokens, model_cfg.context), cfg)
        metrics.append(row)
        clipped += row["clipped"]
        if lead:
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if grads is not None:  # at each evaluation: the statistics of every layer
                t1 = time.perf_counter()
                layers = tracing.layer_stats(model, probe.to(cfg.device))
                for layer, g in zip(layers, grads, strict=True):
                    layer["grad_rms"] = g
                stats_s += time.perf_counter() - t1 + grads_s
                with open(out / "stats.jsonl", "a") as f:
                    f.write(json.dumps({"step": step, "layers": layers,
                                        "clip_fraction": clipped / step,
                                        "stats_s": stats_s,
                                        "elapsed": time.perf_counter() - start}) + "\n")
        if lead and progress and (sys.stderr.isatty() or "val_loss" in row):
            _progress(step, cfg.steps, row["train_loss"], tps, start)
        # a STOP file in the run folder (the app's stop button) ends a single-process run
        asked = world == 1 and (out / "STOP").exists()
        if lead and ("val_loss" in row or step == stop_at or asked):  # resume from here
            torch.save({"model": model.state_dict(), "optimizers": [o.state_dict() for o in opts],
                        "generator": gen.get_state(), "step": step, "best_val": best},
                       out / "last.pt")
        if asked:
            break
    if world > 1:
        dist.barrier()  # last.pt is written before any rank returns
    if lead and step == cfg.steps and cfg.sample_tokens:
        (out / "samples.txt").write_text(sample_text(model, tok, "\n", cfg.sample_tokens,
                                                     seed=cfg.seed))
    return Run(out, model, metrics, best)


def sample_text(model: CausalLM, tok, prompt: str, tokens: int, *,
                temperature: float = 0.8, top_k: int | None = 200, seed: int = 0) -> str:
    """``prompt`` and ``tokens`` tokens sampled after it."""
    device = next(model.parameters()).device
    idx = tok.encode(prompt or "\n")[None].to(device)
    model.eval()
    out = model.generate(idx, tokens, temperature=temperature, top_k=top_k,
                         generator=torch.Generator(device=device).manual_seed(seed))
    model.train()
    return tok.decode(out[0])


def load_run(run_dir: str | Path, device: str = "cpu"):
    """The best checkpoint of a run folder, and its tokenizer: (CausalLM, tokenizer)."""
    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise ValueError(f"run_dir: no checkpoint {str(path)!r}")
    state = torch.load(path, map_location=device, weights_only=False)
    model = CausalLM(ModelConfig.from_dict(state["config"]), device=device)
    model.load_state_dict(state["model"])
    if "chars" in state:  # a run saved before tokenizer.json
        return model, prepare.CharTokenizer(state["chars"])
    return model, prepare.load_tokenizer(run_dir)
