"""Argument checks shared by every builder: each raises a message that names the argument."""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Iterator

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


# --- memory: refuse sizes that cannot fit before allocating them ------------------------------

MEMORY_ENV = "CIRCUIT_PROOFS_MAX_MEMORY_GB"   # overrides the limit (GB = 10^9 bytes)
MEMORY_FRACTION = 0.8                          # default limit: this share of the machine's RAM
_limit_override: list[int] = []                # set by `memory_limit_set` (the command line)


class TooLarge(ValueError):
    """An allocation estimated to exceed the memory limit; carries the figures."""

    def __init__(self, what: str, estimate: int, limit: int, override: str) -> None:
        self.what, self.estimate, self.limit, self.override = what, estimate, limit, override
        super().__init__(f"{what} needs about {format_bytes(estimate)} of memory, more than the "
                         f"{format_bytes(limit)} limit; {override}")


def format_bytes(n: float) -> str:
    """Decimal units: 1.2 GB, 340 MB, 3.1e+08 TB for absurd sizes."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1e6 else f"{value:.2e} {unit}"
    return f"{int(n)} bytes"


def physical_memory() -> int:
    """Bytes of RAM of this machine (sysconf), or 8 GB where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 8 * 10**9


def memory_limit() -> int:
    """The largest allocation builders accept: the command line's --max-memory if set, else
    $CIRCUIT_PROOFS_MAX_MEMORY_GB, else MEMORY_FRACTION of the machine's RAM."""
    if _limit_override:
        return _limit_override[-1]
    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            gb = float(env)
        except ValueError:
            raise ValueError(f"${MEMORY_ENV} must be a number of GB, got {env!r}") from None
        if not gb > 0:
            raise ValueError(f"${MEMORY_ENV} must be > 0 GB, got {env!r}")
        return int(gb * 1e9)
    return int(MEMORY_FRACTION * physical_memory())


@contextlib.contextmanager
def memory_limit_set(n_bytes: int | None) -> Iterator[None]:
    """Within the block, `memory_limit` is ``n_bytes`` (None: unchanged)."""
    if n_bytes is None:
        yield
        return
    check_int("n_bytes", n_bytes, minimum=1)
    _limit_override.append(int(n_bytes))
    try:
        yield
    finally:
        _limit_override.pop()


def check_memory(what: str, n_bytes: int, *,
                 override: str = f"set ${MEMORY_ENV} to raise it") -> int:
    """Raise `TooLarge` (a ValueError) if ``n_bytes`` exceeds `memory_limit`; else return it."""
    limit = memory_limit()
    if n_bytes > limit:
        raise TooLarge(what, int(n_bytes), limit, override)
    return int(n_bytes)
