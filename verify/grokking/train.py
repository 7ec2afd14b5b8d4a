"""Full-batch training on (a + b) mod p with AdamW (and optionally Grokfast), logged.

A run is deterministic given its `RunConfig`: the seed fixes the initialization, the train/test
split (and, for ``labels="random"``, the labels); every step uses the whole training set. Every
``log_every`` steps the run records train/test loss and accuracy, the squared weight norm (total
and per parameter), the section's L_total = L_train + wd ||W||^2, and the embedding's Fourier
sparsity (metrics.py). Restricted and excluded loss (Nanda et al. 2023) are computed at the end,
for every logged step, with the final model's key frequencies (weights are snapshotted at each
log). Grokfast (Lee et al. 2024, "Grokfast: accelerated grokking by amplifying slow
gradients"): after backward, ema <- alpha ema + (1 - alpha) grad, grad <- grad + lambda ema.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from constructions import validation
from verify.grokking import metrics, models, phases
from verify.grokking.config import (  # noqa: F401 - the run's settings and data, re-exported
    LABELS,
    Dataset,
    RunConfig,
    make_dataset,
)
from verify.grokking.summary import SCHEMA, summarize  # noqa: F401 - re-exported
from verify.registry import torch_threads


def grokfast_ema(model: nn.Module, ema: dict[str, Tensor], alpha: float, lam: float) -> None:
    """Lee et al.'s EMA filter, in place on the gradients (ema starts at the first gradient)."""
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        g = param.grad.detach()
        ema[name] = g.clone() if name not in ema else ema[name] * alpha + g * (1 - alpha)
        param.grad.add_(ema[name], alpha=lam)


@dataclass
class State:
    """Everything needed to continue a run (a checkpoint)."""

    cfg: RunConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0
    ema: dict[str, Tensor] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    snapshots: list[dict[str, Tensor]] = field(default_factory=list)
    stopped: str = ""


def new_state(cfg: RunConfig) -> State:
    device = _device(cfg.device)
    model = models.build_model(cfg.model, cfg.p, d=cfg.d, d_model=cfg.d_model,
                               n_heads=cfg.n_heads, d_mlp=cfg.d_mlp,
                               init_scale=cfg.init_scale, seed=cfg.seed,
                               equals_class=cfg.equals_class).to(device)
    trainable = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.wd,
                            betas=(cfg.beta1, cfg.beta2))
    return State(cfg, model, opt, history={k: [] for k in HISTORY_KEYS} | {"norm2_per_param": {}})


HISTORY_KEYS = ("step", "seconds", "train_loss", "test_loss", "train_acc", "test_acc", "norm2",
                "total_loss", "topk_share", "gini")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


CHECKPOINT_SCHEMA = "circuit-proofs/grok-checkpoint/2"
CHECKPOINT_EVERY = 1000     # steps between checkpoints when a checkpoint folder is given


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during `train`: ``run`` is the partial run (JSON-ready), ``checkpoint``
    the folder it was saved to (or None)."""

    def __init__(self, run: dict[str, Any], checkpoint: str | None) -> None:
        super().__init__("interrupted")
        self.run, self.checkpoint = run, checkpoint


def save_checkpoint(state: State, path: str) -> None:
    """A checkpoint folder (verify.checkpoint: safetensors + JSON, nothing pickled)."""
    from verify import checkpoint
    tensors = {f"model/{k}": v for k, v in state.model.state_dict().items()}
    opt = state.optimizer.state_dict()["state"]
    for idx, st in opt.items():
        for key, value in st.items():
            tensors[f"opt/{idx}/{key}"] = torch.as_tensor(value).reshape(-1)
    tensors.update({f"ema/{k}": v for k, v in state.ema.items()})
    for i, snap in enumerate(state.snapshots):
        tensors.update({f"snap/{i}/{k}": v for k, v in snap.items()})
    checkpoint.save(path, schema=CHECKPOINT_SCHEMA, tensors=tensors,
                    meta={"cfg": asdict(state.cfg), "step": state.step, "seconds": state.seconds,
                          "history": state.history, "n_snapshots": len(state.snapshots)})


def load_checkpoint(path: str, **overrides: Any) -> State:
    """A saved state; ``overrides`` may change fields such as steps (not the model or data)."""
    from verify import checkpoint
    meta, tensors = checkpoint.load(path, schema=CHECKPOINT_SCHEMA)
    cfg = replace(RunConfig(**meta["cfg"]), **overrides)
    state = new_state(cfg)
    state.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    opt_state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            opt_state.setdefault(int(idx), {})[name] = value.reshape(()) if name == "step" else value
    shapes = [q.shape for q in state.model.parameters() if q.requires_grad]
    for i, st in opt_state.items():
        for name in ("exp_avg", "exp_avg_sq"):
            st[name] = st[name].reshape(shapes[i])
    groups = state.optimizer.state_dict()["param_groups"]
    state.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    state.step, state.seconds, state.history = meta["step"], meta["seconds"], meta["history"]
    state.ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema/")}
    state.snapshots = [{k.split("/", 2)[2]: v for k, v in tensors.items()
                        if k.startswith(f"snap/{i}/")} for i in range(meta["n_snapshots"])]
    return state


def _log(state: State, data: Dataset, full_logits: Tensor) -> None:
    cfg, h = state.cfg, state.history
    L = full_logits.detach().double().cpu()
    y = data.labels
    pred = L.argmax(-1) == y
    norm2, per = metrics.weight_norms(state.model)
    spectrum = metrics.embedding_spectrum(models.embedding(state.model))
    train_loss = float(F.cross_entropy(L[data.train], y[data.train]))
    test_loss = float(F.cross_entropy(L[data.test], y[data.test])) if len(data.test) else 0.0
    row = {"step": state.step, "seconds": state.seconds, "train_loss": train_loss,
           "test_loss": test_loss, "train_acc": float(pred[data.train].double().mean()),
           "test_acc": float(pred[data.test].double().mean()) if len(data.test) else 1.0,
           "norm2": norm2, "total_loss": train_loss + cfg.wd * norm2,
           "topk_share": metrics.top_k_share(spectrum), "gini": metrics.gini(spectrum.sqrt())}
    for key, value in row.items():
        h[key].append(value)
    for name, value in per.items():
        h["norm2_per_param"].setdefault(name, []).append(value)
    state.snapshots.append({k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()})


def train(cfg: RunConfig | None = None, *, state: State | None = None, progress: bool = False,
          checkpoint: str | None = None, checkpoint_every: int = CHECKPOINT_EVERY
          ) -> dict[str, Any]:
    """Run (or continue, from ``state``) to cfg.steps; return the run as a JSON-ready dict.
    With ``checkpoint`` (a folder) the state is saved every ``checkpoint_every`` steps and at
    the end. Ctrl-C / SIGTERM: the state is saved (if ``checkpoint``) and `Interrupted` raised
    with the partial run."""
    cfg = state.cfg if state is not None else (cfg if cfg is not None else RunConfig())
    validation.check_int("checkpoint_every", checkpoint_every, minimum=1)
    with torch_threads(cfg.threads):
        return _train(cfg, state, progress, checkpoint, checkpoint_every)


def _train(cfg: RunConfig, state: State | None, progress: bool, checkpoint: str | None,
           checkpoint_every: int) -> dict[str, Any]:
    if state is None:
        state = new_state(cfg)
    data = make_dataset(cfg)
    device = _device(cfg.device)
    a, b, y = data.a.to(device), data.b.to(device), data.labels.to(device)
    tr = data.train.to(device)
    a_tr, b_tr, y_tr = a[tr], b[tr], y[tr]
    bar = _bar(cfg, state, progress)
    model = state.model
    if state.step == 0 and not state.history["step"]:
        with torch.no_grad():
            _log(state, data, models.logits(model, a, b))
    try:
        _loop(state, data, cfg, device, bar, checkpoint, checkpoint_every, a, b, a_tr, b_tr, y_tr)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        state.stopped = f"interrupted at step {state.step}"
        if checkpoint is not None:
            save_checkpoint(state, checkpoint)
        raise Interrupted(summarize(state, data) | {"partial": True}, checkpoint) from None
    if bar is not None:
        bar.close()
    if checkpoint is not None:
        save_checkpoint(state, checkpoint)
    return summarize(state, data)


def _loop(state: State, data: Dataset, cfg: RunConfig, device: torch.device, bar: Any,
          checkpoint: str | None, checkpoint_every: int, a: Tensor, b: Tensor, a_tr: Tensor,
          b_tr: Tensor, y_tr: Tensor) -> None:
    model, opt = state.model, state.optimizer
    while state.step < cfg.steps:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if cfg.warmup_steps:                       # their LambdaLR: factor min(step / warmup, 1)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * min(state.step / cfg.warmup_steps, 1.0)
        out = models.logits(model, a_tr, b_tr)
        loss = F.cross_entropy(out.double() if cfg.loss_float64 else out, y_tr)
        loss.backward()
        if cfg.grokfast:
            grokfast_ema(model, state.ema, cfg.gf_alpha, cfg.gf_lambda)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        state.seconds += time.perf_counter() - start
        state.step += 1
        if bar is not None:
            bar.update(1)
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            with torch.no_grad():
                _log(state, data, models.logits(model, a, b))
            h = state.history
            if bar is not None:
                bar.set_postfix(train=f"{h['train_acc'][-1]:.3f}", test=f"{h['test_acc'][-1]:.3f}")
            if _should_stop(state):
                break
        if checkpoint is not None and state.step % checkpoint_every == 0:
            save_checkpoint(state, checkpoint)


def _bar(cfg: RunConfig, state: State, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.steps, initial=state.step, desc=f"grok {cfg.model} p={cfg.p}",
                unit="step", dynamic_ncols=True, mininterval=0.5)


def _should_stop(state: State) -> bool:
    cfg, h = state.cfg, state.history
    if cfg.max_seconds is not None and state.seconds >= cfg.max_seconds:
        state.stopped = f"max_seconds={cfg.max_seconds} reached at step {state.step}"
        return True
    if cfg.stop_after_gen is not None:
        t_gen = next((s for s, v in zip(h["step"], h["test_acc"]) if v >= phases.GENERALIZED), None)
        if t_gen is not None and state.step >= t_gen + cfg.stop_after_gen:
            state.stopped = f"stop_after_gen={cfg.stop_after_gen} after generalizing at {t_gen}"
            return True
    return False
