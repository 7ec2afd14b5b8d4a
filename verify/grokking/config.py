"""The grokking run's settings (`RunConfig`, validated) and its data: every pair (a, b) of
residues mod p, labelled (a + b) mod p (or, for ``labels="random"``, a fixed random label), split
into training and test pairs by the run's seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from torch import Tensor

from constructions import validation
from verify.grokking import metrics, models

LABELS = ("sum", "random")
SPLITS = ("torch", "python")


@dataclass(frozen=True)
class RunConfig:
    """One training run; defaults are the fast default run of `python -m verify grok`."""

    model: str = "tiny"          # "tiny" (Demo 2's TinyModel) | "transformer" (Nanda et al.)
    p: int = 47                  # modulus; Demo 2 uses 97, Nanda et al. 113
    frac: float = 0.4            # share of the p^2 pairs used for training
    wd: float = 1.0              # AdamW weight decay (Demo 2: 0.1; Nanda et al.: 1.0)
    lr: float = 1e-2             # AdamW learning rate (Demo 2 and Nanda et al.: 1e-3)
    beta1: float = 0.9
    beta2: float = 0.98          # Nanda et al.'s; PyTorch's default (Demo 2) is 0.999
    steps: int = 4000            # full-batch steps
    seed: int = 0
    log_every: int = 50
    d: int = 64                  # TinyModel width (Demo 2: 64)
    d_model: int = 128           # transformer width (Nanda et al.: 128, 4 heads, d_mlp 512)
    n_heads: int = 4
    d_mlp: int = 512
    init_scale: float = 1.0      # multiplies the default initialization
    labels: str = "sum"          # "sum": (a + b) mod p; "random": memorize random labels
    n_train: int | None = None   # number of training pairs; None = round(frac p^2)
    grokfast: bool = False
    gf_alpha: float = 0.98       # Grokfast EMA decay (Lee et al.'s default)
    gf_lambda: float = 2.0       # Grokfast amplification (Lee et al.'s default)
    stop_after_gen: int | None = None  # stop this many steps after test acc >= 99% (None: run on)
    device: str = "cpu"
    max_seconds: float | None = None   # stop (and say so) after this much training time
    threads: int = 1             # torch CPU threads: these small networks gain nothing from more,
                                 # and on a shared 2-core machine 2 threads ran ~10x slower
    # Options that Nanda et al.'s official code (progress-measures-paper, transformers.py) has;
    # the defaults are this project's runs.
    warmup_steps: int = 0        # linear warmup: step s (from 0) uses lr * min(s / warmup, 1); theirs: 10
    equals_class: bool = False   # transformer: p + 1 outputs, "=" a class too (theirs: 114 at p = 113)
    loss_float64: bool = False   # training loss computed in float64 (theirs: yes)
    split: str = "torch"         # "torch": torch.randperm(seed); "python": random.Random(seed).shuffle
                                 # of the a-major pairs, first n_train for training (theirs)

    def __post_init__(self) -> None:
        validation.check_choice("model", self.model, models.MODELS)
        validation.check_int("p", self.p, minimum=2)
        _in_open_unit("frac", self.frac)
        if not (isinstance(self.wd, (int, float)) and not isinstance(self.wd, bool)
                and math.isfinite(self.wd) and self.wd >= 0):
            raise ValueError(f"wd (weight decay) must be a finite number >= 0, got {self.wd!r}")
        validation.check_positive_real("lr", self.lr)
        for name in ("beta1", "beta2", "gf_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if not (isinstance(self.gf_lambda, (int, float)) and self.gf_lambda >= 0):
            raise ValueError(f"gf_lambda must be >= 0, got {self.gf_lambda!r}")
        validation.check_int("steps", self.steps, minimum=1)
        validation.check_int("seed", self.seed, minimum=0)
        validation.check_int("log_every", self.log_every, minimum=1)
        for name in ("d", "d_model", "n_heads", "d_mlp"):
            validation.check_int(name, getattr(self, name), minimum=1)
        validation.check_positive_real("init_scale", self.init_scale)
        validation.check_choice("labels", self.labels, LABELS)
        validation.check_choice("device", self.device, ("cpu", "cuda"))
        if self.n_train is not None:
            validation.check_int("n_train", self.n_train, minimum=1, maximum=self.p ** 2 - 1)
        elif not 1 <= self.train_size <= self.p ** 2 - 1:
            raise ValueError(f"frac={self.frac} leaves {self.train_size} of the {self.p ** 2} "
                             "pairs for training; need at least 1 train and 1 test pair")
        if self.stop_after_gen is not None:
            validation.check_int("stop_after_gen", self.stop_after_gen, minimum=0)
        if self.max_seconds is not None:
            validation.check_positive_real("max_seconds", self.max_seconds)
        validation.check_int("threads", self.threads, minimum=1)
        validation.check_int("warmup_steps", self.warmup_steps, minimum=0)
        for name in ("equals_class", "loss_float64"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.equals_class and self.model != "transformer":
            raise ValueError("equals_class=True needs model='transformer' (the tiny model has no "
                             "'=' token)")
        validation.check_choice("split", self.split, SPLITS)

    @property
    def train_size(self) -> int:
        return self.n_train if self.n_train is not None else round(self.frac * self.p ** 2)


def _in_open_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")


@dataclass
class Dataset:
    a: Tensor            # [p^2] every pair, a-major
    b: Tensor
    labels: Tensor       # [p^2]
    train: Tensor        # indices of the training pairs [n_train]
    test: Tensor         # indices of the test pairs


def make_dataset(cfg: RunConfig) -> Dataset:
    a, b = metrics.all_pairs(cfg.p)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.split == "python":
        order = list(range(cfg.p ** 2))      # index a * p + b: the a-major order of their pairs
        random.Random(cfg.seed).shuffle(order)
        perm = torch.tensor(order)
    else:
        perm = torch.randperm(cfg.p ** 2, generator=gen)
    labels = (a + b) % cfg.p
    if cfg.labels == "random":
        labels = torch.randint(0, cfg.p, (cfg.p ** 2,), generator=gen)
    n = cfg.train_size
    return Dataset(a, b, labels, perm[:n].sort().values, perm[n:].sort().values)
