"""Several seeds of one setting trained as one batched model (Demo 2's TinyModel).

The weights of S seeds are stacked on a leading seed axis (``embed.weight`` [S, p, d],
``fc.0.weight`` [S, 2d, 2d], ...). One forward pass, one backward pass and one AdamW step serve
all seeds: the loss is the sum over seeds of each seed's mean training cross-entropy, so the
gradient of seed k's slice is seed k's own gradient, and AdamW acts element-wise. Seed k's
initialization and train/test split are exactly those of a single run with seed k
(`models.build_model`, `train.make_dataset`), so seed k follows the single run's trajectory up
to float rounding (tests/test_grokking.py compares them step by step).

The first layer is evaluated through per-residue tables: with fc.0.weight = [W1a | W1b],
fc.0(concat(E[a], E[b])) = (E W1a^T)[a] + (E W1b^T)[b] + b1: the same function with p rows
multiplied instead of n_train (rounding differs from the single run's order of operations).

`forward` gives the logits of every seed; `BatchRun` holds the state of a batched run (the
seeds still training, the optimizer, the per-seed logs) and can drop seeds that are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from verify.grokking import metrics, models
from verify.grokking.train import RunConfig, make_dataset

PARAM_NAMES = ("embed.weight", "fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias")
EMBED = "embed.weight"


def stacked_init(cfg: RunConfig, seeds: Sequence[int]) -> dict[str, Tensor]:
    """Each seed's initial TinyModel weights (as `train` would build them), stacked: [S, ...]."""
    if cfg.model != "tiny":
        raise ValueError(f"model must be 'tiny' for batched seeds, got {cfg.model!r}")
    if cfg.warmup_steps or cfg.loss_float64 or cfg.split != "torch":
        raise ValueError("batched seeds support warmup_steps=0, loss_float64=False and "
                         "split='torch' only")
    per_seed = [models.build_model("tiny", cfg.p, d=cfg.d, init_scale=cfg.init_scale,
                                   seed=s).state_dict() for s in seeds]
    return {name: torch.stack([sd[name] for sd in per_seed]) for name in PARAM_NAMES}


def stacked_data(cfg: RunConfig, seeds: Sequence[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(labels [S, p^2], train [S, n_train], test [S, n_test], a-major pairs [2, p^2]): each
    seed's labels (they differ only for labels="random") and split."""
    sets = [make_dataset(replace(cfg, seed=s)) for s in seeds]
    return (torch.stack([d.labels for d in sets]), torch.stack([d.train for d in sets]),
            torch.stack([d.test for d in sets]), torch.stack(metrics.all_pairs(cfg.p)))


def forward(params: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
    """Logits [S, n, p] of every seed on its own inputs a, b: LongTensor [S, n]."""
    E = params["embed.weight"]                         # [S, p, d]
    W1, b1 = params["fc.0.weight"], params["fc.0.bias"]  # [S, 2d, 2d], [S, 2d]
    W2, b2 = params["fc.2.weight"], params["fc.2.bias"]  # [S, p, 2d], [S, p]
    S, p, d = E.shape
    width = W1.shape[1]
    # what residue a adds to the pre-activation, with the bias folded in; and residue b
    table_a = torch.baddbmm(b1[:, None, :], E, W1[:, :, :d].transpose(1, 2))   # [S, p, 2d]
    table_b = E @ W1[:, :, d:].transpose(1, 2)                                  # [S, p, 2d]
    offset = (torch.arange(S, device=a.device) * p)[:, None]         # row of seed s in [S p]
    pre = table_a.reshape(S * p, width).index_select(0, (a + offset).flatten())
    pre = pre.add_(table_b.reshape(S * p, width).index_select(0, (b + offset).flatten()))
    hidden = torch.relu_(pre).view(S, -1, width)                      # [S, n, 2d]
    return torch.baddbmm(b2[:, None, :], hidden, W2.transpose(1, 2))  # [S, n, p]


def seed_losses(params: dict[str, Tensor], a: Tensor, b: Tensor, y: Tensor) -> Tensor:
    """Each seed's mean cross-entropy [S] on its inputs (a, b, y: [S, n])."""
    logits = forward(params, a, b)
    S, n, p = logits.shape
    return F.cross_entropy(logits.reshape(S * n, p), y.flatten(), reduction="none").view(S, n).mean(1)


def hidden_of(params: dict[str, Tensor], i: int, a: Tensor, b: Tensor) -> Tensor:
    """Seed slot i's hidden activations after ReLU [n, 2d] on pairs a, b: [n]."""
    one = {k: v[i: i + 1] for k, v in params.items()}
    E, W1, b1 = one["embed.weight"][0], one["fc.0.weight"][0], one["fc.0.bias"][0]
    return torch.relu(torch.cat([E[a], E[b]], dim=-1) @ W1.T + b1)


def slot_state_dict(params: dict[str, Tensor], i: int) -> dict[str, Tensor]:
    """Seed slot i's weights as a TinyModel state_dict."""
    return {k: v[i].detach().clone() for k, v in params.items()}


class BatchRun:
    """The live state of a batched run: weights [S, ...] of the seeds still training, AdamW."""

    def __init__(self, cfg: RunConfig, seeds: Sequence[int],
                 params: dict[str, Tensor] | None = None) -> None:
        if len(seeds) == 0 or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be non-empty and distinct, got {list(seeds)!r}")
        self.cfg, self.seeds = cfg, list(seeds)
        self.device = torch.device(cfg.device)
        init = stacked_init(cfg, seeds) if params is None else params
        self.params = {k: init[k].detach().clone().to(self.device).requires_grad_(True)
                       for k in PARAM_NAMES}
        self.opt = self._optimizer()
        labels, train, test, pairs = stacked_data(cfg, seeds)
        self.labels, self.pairs = labels.to(self.device), pairs.to(self.device)
        self.train_idx, self.test_idx = train.to(self.device), test.to(self.device)
        self._cache_inputs()

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        return torch.optim.AdamW([self.params[k] for k in PARAM_NAMES], lr=cfg.lr,
                                 weight_decay=cfg.wd, betas=(cfg.beta1, cfg.beta2))

    def _cache_inputs(self) -> None:
        a, b = self.pairs
        self.a_tr, self.b_tr = a[self.train_idx], b[self.train_idx]   # [S, n_train]
        self.y_tr = self.labels.gather(1, self.train_idx)

    def step(self) -> Tensor:
        """One AdamW step for every seed; returns the seeds' training losses [S] before it."""
        self.opt.zero_grad(set_to_none=True)
        losses = seed_losses(self.params, self.a_tr, self.b_tr, self.y_tr)
        losses.sum().backward()
        self.opt.step()
        return losses.detach()

    @torch.no_grad()
    def full_logits(self) -> Tensor:
        """Logits of every seed on every pair [S, p^2, p] (float64)."""
        S = len(self.seeds)
        a, b = self.pairs
        return forward(self.params, a.expand(S, -1), b.expand(S, -1)).double()

    def adam_state(self) -> dict[str, Tensor]:
        """AdamW's moments by parameter name, and its (shared) step count."""
        out: dict[str, Tensor] = {}
        for k in PARAM_NAMES:
            st = self.opt.state.get(self.params[k], {})
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in st:
                    out[f"{moment}/{k}"] = st[moment]
            if "step" in st:
                out["step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
        return out

    def load_adam_state(self, state: dict[str, Tensor]) -> None:
        if "step" not in state:
            return
        for k in PARAM_NAMES:
            self.opt.state[self.params[k]] = {
                "step": state["step"].reshape(()).clone().float(),
                "exp_avg": state[f"exp_avg/{k}"].clone().to(self.device),
                "exp_avg_sq": state[f"exp_avg_sq/{k}"].clone().to(self.device)}

    def keep(self, slots: Sequence[int]) -> None:
        """Keep only the seed slots listed (their weights and AdamW moments), drop the rest."""
        idx = torch.tensor(list(slots), dtype=torch.long, device=self.device)
        adam = self.adam_state()
        self.seeds = [self.seeds[i] for i in slots]
        self.params = {k: v.detach().index_select(0, idx).clone().requires_grad_(True)
                       for k, v in self.params.items()}
        self.opt = self._optimizer()
        if "step" in adam:
            self.load_adam_state({k: (v if k == "step" else v.index_select(0, idx))
                                  for k, v in adam.items()})
        self.labels = self.labels.index_select(0, idx)
        self.train_idx = self.train_idx.index_select(0, idx)
        self.test_idx = self.test_idx.index_select(0, idx)
        self._cache_inputs()
