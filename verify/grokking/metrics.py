"""Progress measures of a modular-addition network (Nanda et al. 2023, section 5).

* squared weight norms, total and per parameter (trainable parameters only);
* the Fourier spectrum of the embedding W_E [p, d]: for each frequency k = 1..floor(p/2) the
  squared norm of W_E's projection on span{cos(2 pi k x / p), sin(2 pi k x / p)} (the constant
  component, k = 0, is left out); its top-k share and the Gini coefficient of the per-frequency
  norms (0: spread evenly; (n-1)/n: one frequency);
* restricted and excluded loss: write the logits on all p^2 inputs as L [p^2, p]; for k >= 1,
  P_k L is the projection of L (along the input axis) on span{cos(w_k(a+b)), sin(w_k(a+b))},
  w_k = 2 pi k / p, and P_0 L the per-output mean. These projections are orthogonal on Z_p^2.
  Restricted logits: P_0 L + sum_{k in K} P_k L (the loss on every pair); excluded logits:
  L - sum_{k in K} P_k L (the loss on the training pairs). K: the key frequencies.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

KEY_ENERGY_SHARE = 0.9   # key frequencies: the fewest whose logit energy reaches this share
MAX_KEY_FREQS = 8        # ... but never more than this many
TOP_K = 5                # the embedding's top-k share uses this k (Nanda et al. find 5 keys)


def weight_norms(model: nn.Module) -> tuple[float, dict[str, float]]:
    """Total squared Frobenius norm of the trainable parameters and each one's share."""
    per = {name: float((param.detach().double() ** 2).sum())
           for name, param in model.named_parameters() if param.requires_grad}
    return sum(per.values()), per


def frequencies(p: int) -> list[int]:
    return list(range(1, p // 2 + 1))


def fourier_basis(p: int, *, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """cos and sin rows [n_freq, p] for k = 1..floor(p/2), each of unit norm (sin of k = p/2
    is identically zero and is left as a zero row)."""
    k = torch.tensor(frequencies(p), dtype=dtype)[:, None]
    x = torch.arange(p, dtype=dtype)[None, :]
    cos, sin = torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)
    return _unit_rows(cos), _unit_rows(sin)


def _unit_rows(m: Tensor) -> Tensor:
    norms = m.norm(dim=1, keepdim=True)
    return torch.where(norms > 1e-9, m / norms.clamp_min(1e-300), torch.zeros_like(m))


def embedding_spectrum(w_e: Tensor) -> Tensor:
    """Squared norm of W_E [p, d] in each frequency k = 1..floor(p/2): [n_freq]."""
    w = w_e.detach().double().cpu()
    cos, sin = fourier_basis(w.shape[0])
    return ((cos @ w) ** 2).sum(1) + ((sin @ w) ** 2).sum(1)


def top_k_share(energy: Tensor, k: int = TOP_K) -> float:
    """Share of the total (non-constant) energy in the k largest frequencies."""
    total = float(energy.sum())
    if total <= 0:
        return 0.0
    # min: with k >= the number of frequencies the two sums differ only by rounding
    return min(1.0, float(energy.sort(descending=True).values[:k].sum()) / total)


def gini(values: Tensor) -> float:
    """Gini coefficient of non-negative values: sum_i (2i - n - 1) x_(i) / (n sum x), i = 1..n
    over the values sorted ascending; 0 for equal values, (n - 1)/n for a single non-zero."""
    x = values.detach().double().flatten().sort().values
    n, total = x.numel(), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * x).sum()) / (n * total)


def all_pairs(p: int) -> tuple[Tensor, Tensor]:
    """Every input (a, b), a-major: LongTensors [p^2]."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return a.flatten(), b.flatten()


def sum_basis(p: int) -> tuple[Tensor, Tensor]:
    """cos(w_k(a+b)), sin(w_k(a+b)) over all pairs, unit norm: [n_freq, p^2] each."""
    cos, sin = fourier_basis(p)
    a, b = all_pairs(p)
    s = (a + b) % p
    return cos[:, s] / math.sqrt(p), sin[:, s] / math.sqrt(p)  # each residue occurs p times


def logit_components(full_logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For L [p^2, p]: the mean row [p] and coefficients C, S [n_freq, p] with
    P_k L = c_k C_k^T + s_k S_k^T (c_k, s_k the unit vectors of `sum_basis`)."""
    p = full_logits.shape[1]
    L = full_logits.detach().double().cpu()
    c, s = sum_basis(p)
    return L.mean(0), c @ L, s @ L


def logit_energy(full_logits: Tensor) -> Tensor:
    """||P_k L||_F^2 for each frequency k: [n_freq]."""
    _, C, S = logit_components(full_logits)
    return (C ** 2).sum(1) + (S ** 2).sum(1)


def key_frequencies(full_logits: Tensor, *, share: float = KEY_ENERGY_SHARE,
                    cap: int = MAX_KEY_FREQS) -> list[int]:
    """The fewest frequencies (most energetic first) holding ``share`` of the non-constant
    logit energy, at most ``cap`` of them."""
    energy = logit_energy(full_logits)
    order = energy.argsort(descending=True)
    total, acc = float(energy.sum()), 0.0
    keys: list[int] = []
    for idx in order.tolist():
        if len(keys) >= cap or (total > 0 and acc >= share * total):
            break
        keys.append(idx + 1)
        acc += float(energy[idx])
    return sorted(keys)


def _projection(full_logits: Tensor, keys: list[int], p: int | None = None) -> Tensor:
    """sum_{k in keys} P_k M for M [p^2, n] (p defaults to n: logits)."""
    p = full_logits.shape[1] if p is None else p
    L = full_logits.detach().double().cpu()
    c, s = sum_basis(p)
    idx = torch.tensor([k - 1 for k in keys], dtype=torch.long)
    c, s = c[idx], s[idx]                           # [n_keys, p^2]
    return c.T @ (c @ L) + s.T @ (s @ L)            # [p^2, n]


def restricted_loss(full_logits: Tensor, labels: Tensor, keys: list[int]) -> float:
    """Cross-entropy on every pair of the logits kept to P_0 + sum_{k in keys} P_k."""
    L = full_logits.detach().double().cpu()
    restricted = L.mean(0, keepdim=True) + _projection(L, keys)
    return float(torch.nn.functional.cross_entropy(restricted, labels.cpu()))


def excluded_loss(full_logits: Tensor, labels: Tensor, keys: list[int], train: Tensor) -> float:
    """Cross-entropy on the training pairs of L - sum_{k in keys} P_k L."""
    L = full_logits.detach().double().cpu()
    excluded = L - _projection(L, keys)
    return float(torch.nn.functional.cross_entropy(excluded[train.cpu()], labels.cpu()[train.cpu()]))


def product_share(hidden: Tensor, p: int, keys: list[int]) -> float:
    """Share of the hidden activations' variance over all pairs ([p^2, width], a-major) that
    lies in span{cos(w_k(a+b)), sin(w_k(a+b)) : k in keys}: how much the MLP computes the
    products of the trig-identity adder."""
    H = hidden.detach().double().cpu()
    H = H - H.mean(0, keepdim=True)
    total = float((H ** 2).sum())
    if total <= 0 or not keys:
        return 0.0
    return float((_projection(H, keys, p) ** 2).sum()) / total


DEAD_NEURON_VAR = 1e-12   # a neuron whose activation varies less than this over the pairs is dead


def neuron_frequency_energy(hidden: Tensor, p: int) -> Tensor:
    """For hidden activations [p^2, width] (a-major), each neuron's energy per frequency
    k = 1..floor(p/2): the squared 2D Fourier coefficients at (u, v) with u, v in {0, +-k}, not
    both 0 (terms in a alone, b alone, or products, all of frequency k): [n_freq, width]."""
    H = hidden.detach().double().cpu().reshape(p, p, -1)
    power = torch.fft.fft2(H, dim=(0, 1)).abs() ** 2               # [p, p, width]
    fold = torch.minimum(torch.arange(p), p - torch.arange(p))      # frequency of each index
    out = []
    for k in frequencies(p):
        on = (fold == 0) | (fold == k)
        mask = on[:, None] & on[None, :]
        mask[0, 0] = False
        out.append(power[mask].sum(0))
    return torch.stack(out)


def nanda_key_frequencies(hidden: Tensor, p: int) -> dict[str, Any]:
    """Nanda et al.'s rule: every frequency that is some live neuron's dominant one, with how
    many neurons each frequency dominates."""
    energy = neuron_frequency_energy(hidden, p)                     # [n_freq, width]
    live = hidden.detach().double().var(0) > DEAD_NEURON_VAR
    dominant = energy.argmax(0)[live.cpu()] + 1
    counts = {int(k): int((dominant == k).sum()) for k in dominant.unique()}
    return {"keys": sorted(counts), "neurons_per_key": counts, "live_neurons": int(live.sum())}
