"""Train small attention-only transformers on the task of task.py and track the circuit.

A run is deterministic given its `TrainConfig` (the seed fixes initialization and batches; the
task's table_seed fixes the bigram table). The model is our `Transformer` (TransformerLens names,
float32 for speed, no LayerNorm, scores divided by sqrt(d_head) as in TransformerLens), trained
with AdamW (weight decay 0 by default: Adam) on the next-token loss at every position. Every
``log_every`` steps the run records, on a fixed held-out batch: the loss on the copied tokens
and early in the sequence, the
in-context-learning score (Olsson et al. 2022: loss late minus loss early; negative = the
context helps), accuracy on the repeated half, and every head's previous-token and induction
scores and every layer-0 -> layer-1 K-composition score (verify.analysis).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from constructions import validation
from constructions.transformer import Config, Transformer
from verify.analysis import composition, scores
from verify.formation.task import Batch, TaskConfig, bigram_loss, bigram_table, sample
from verify.registry import torch_threads

SCHEMA = "circuit-proofs/induction-run/1"
EVAL_SEQS = 256          # held-out sequences for the tracked measurements
EVAL_SEED = 10_000       # their generator seed (independent of the training seed)


@dataclass(frozen=True)
class TrainConfig:
    """One run; the defaults are `python -m verify train-induction`'s default run."""

    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    d_head: int = 16
    d_mlp: int | None = None     # None: attention-only (the control run sets a width)
    lr: float = 1e-2             # the heads form near step 600-800 at this rate (seeds 0-2)
    weight_decay: float = 0.0    # AdamW decoupled weight decay (0: plain Adam)
    batch: int = 32
    steps: int = 1200
    seed: int = 0
    log_every: int = 50
    threads: int = 1             # one thread: small models gain nothing from more on 2 cores
    task: TaskConfig = field(default_factory=TaskConfig)

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "batch", "steps", "log_every",
                     "threads"):
            validation.check_int(name, getattr(self, name), minimum=1)
        validation.check_int("seed", self.seed, minimum=0)
        if self.d_mlp is not None:
            validation.check_int("d_mlp", self.d_mlp, minimum=1)
        validation.check_positive_real("lr", self.lr)
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < math.inf):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.task, TaskConfig):
            raise TypeError("task must be a formation.task.TaskConfig")

    def model_config(self) -> Config:
        t = self.task
        return Config(n_layers=self.n_layers, n_heads=self.n_heads, d_model=self.d_model,
                      d_head=self.d_head, d_vocab=t.vocab_size + 1, n_ctx=t.n_ctx,
                      d_mlp=self.d_mlp, act_fn=None if self.d_mlp is None else "relu",
                      attn_scale=math.sqrt(self.d_head), dtype=torch.float32)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def init_model(cfg: TrainConfig) -> Transformer:
    """Gaussian weights, std 1/sqrt(fan in) (W_U: 1/d_model, a small start for the logits)."""
    mcfg = cfg.model_config()
    gen = torch.Generator().manual_seed(cfg.seed)
    model = Transformer(mcfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-1].startswith("b_"):
                continue
            fan_in = p.shape[-2] if p.dim() >= 2 else p.shape[-1]
            std = 1 / mcfg.d_model if name == "unembed.W_U" else fan_in ** -0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def evaluate(model: Transformer, task: TaskConfig, batch: Batch) -> dict[str, float]:
    """Losses, ICL score and accuracy of ``model`` on task sequences."""
    tokens = batch.tokens
    with torch.no_grad():
        logits = model(tokens)[:, :-1]  # position t predicts token t + 1
        per_pos = F.cross_entropy(logits.transpose(1, 2).float(), tokens[:, 1:],
                                  reduction="none")  # [batch, pos - 1]
    rep = batch.repeated_mask(task.copy_len)
    early = task.early_positions()
    loss_rep, loss_early = float(per_pos[rep].mean()), float(per_pos[:, early].mean())
    acc_rep = float((logits.argmax(-1) == tokens[:, 1:])[rep].float().mean())
    return {"loss": float(per_pos.mean()), "loss_repeated": loss_rep, "loss_early": loss_early,
            "icl_score": loss_rep - loss_early, "acc_repeated": acc_rep}


def track(model: Transformer, task: TaskConfig, batch: Batch) -> dict[str, Any]:
    """`evaluate` plus per-head scores and layer-0 -> layer-1 K-composition."""
    out: dict[str, Any] = evaluate(model, task, batch)
    probe = scores.probe_tokens(model.cfg, seed=EVAL_SEED)
    heads = scores.head_scores(model, probe, copying=False)
    out["previous_token"] = [[h["previous_token"] for h in layer] for layer in heads]
    out["induction"] = [[h["induction"] for h in layer] for layer in heads]
    if model.cfg.n_layers >= 2:
        out["k_composition"] = composition.matrix(model, 0, 1, "k").tolist()
    return out


def train(cfg: TrainConfig, *, progress: Callable[[int, dict[str, Any]], None] | None = None,
          state: dict[str, Any] | None = None,
          checkpoint: Callable[[dict[str, Any]], None] | None = None,
          checkpoint_every: int | None = None) -> dict[str, Any]:
    """Train from scratch (or from ``state``, see `checkpoint_state`), returning the run record.

    ``checkpoint(state)`` is called every ``checkpoint_every`` steps and when training ends or is
    interrupted (the KeyboardInterrupt then propagates, with the state saved)."""
    with torch_threads(cfg.threads):
        return _train(cfg, progress, state, checkpoint, checkpoint_every)


def _train(cfg: TrainConfig, progress, state, checkpoint, checkpoint_every  # noqa: ANN001
           ) -> dict[str, Any]:
    table = bigram_table(cfg.task)
    eval_batch = sample(cfg.task, EVAL_SEQS, torch.Generator().manual_seed(EVAL_SEED), table)
    model = init_model(cfg).requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    history: list[dict[str, Any]] = []
    step, seconds = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        history, step, seconds = list(state["history"]), state["step"], state["seconds"]
    if step == 0:
        history.append({"step": 0, **track(model, cfg.task, eval_batch)})

    def snapshot() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "generator": gen.get_state(), "history": history, "step": step,
                "seconds": seconds + time.perf_counter() - start}

    start = time.perf_counter()
    try:
        while step < cfg.steps:
            tokens = sample(cfg.task, cfg.batch, gen, table).tokens
            logits = model(tokens)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   tokens[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, "train_loss": float(loss.detach()),
                       **track(model, cfg.task, eval_batch)}
                history.append(row)
                if progress is not None:
                    progress(step, row)
            if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
                checkpoint(snapshot())
    finally:
        if checkpoint is not None:
            checkpoint(snapshot())
        seconds += time.perf_counter() - start
    early = torch.zeros_like(eval_batch.repeated_mask(cfg.task.copy_len))
    early[:, cfg.task.early_positions()] = True
    base_rep = bigram_loss(eval_batch.tokens, eval_batch.repeated_mask(cfg.task.copy_len), table)
    base_early = bigram_loss(eval_batch.tokens, early, table)
    return {"schema": SCHEMA, "config": cfg.as_json(), "history": history,
            "model": model.requires_grad_(False),
            "bigram_baseline": {"loss_repeated": base_rep[0], "acc_repeated": base_rep[1],
                                "loss_early": base_early[0], "acc_early": base_early[1]},
            "parameters": sum(p.numel() for p in model.parameters()),
            "timing": {"steps": step, "train_seconds": round(seconds, 2),
                       "steps_per_second": round(step / seconds, 1) if seconds else None},
            "versions": versions()}


def config_from_json(d: dict[str, Any]) -> TrainConfig:
    """The `TrainConfig` that `TrainConfig.as_json` wrote."""
    fields = dict(d)
    fields["task"] = TaskConfig(**fields.get("task", {}))
    return TrainConfig(**fields)


def versions() -> dict[str, str]:
    import numpy

    return {"torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version(), "machine": platform.machine()}
