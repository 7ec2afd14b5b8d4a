"""Argument checks shared by every builder: each raises a message that names the argument."""

from __future__ import annotations

import numbers

import torch


def check_int(name: str, value: object, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise TypeError/ValueError naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}" + _upper(maximum) + f", got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _upper(maximum: int | None) -> str:
    return "" if maximum is None else f" and <= {maximum}"


def check_positive_real(name: str, value: object) -> float:
    """Return ``value`` as a float > 0 (finite), or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_tokens(tokens: object, *, d_vocab: int, n_ctx: int, name: str = "tokens") -> torch.Tensor:
    """Tokens must be an integer tensor [batch, pos] with 1 <= pos <= n_ctx and 0 <= t < d_vocab."""
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch.LongTensor [batch, pos], got {type(tokens).__name__}")
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must have an integer dtype (torch.long), got {tokens.dtype}")
    if tokens.dim() != 2:
        raise ValueError(f"{name} must have shape [batch, pos], got shape {tuple(tokens.shape)}")
    if tokens.shape[1] < 1 or tokens.shape[1] > n_ctx:
        raise ValueError(f"{name} length must be between 1 and n_ctx={n_ctx}, got {tokens.shape[1]}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= d_vocab):
        raise ValueError(f"{name} must lie in [0, {d_vocab - 1}] (d_vocab={d_vocab}), "
                         f"got values in [{int(tokens.min())}, {int(tokens.max())}]")
    return tokens.long()
