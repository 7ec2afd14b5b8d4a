"""Checkpoints for long runs: tensors in safetensors, everything else in JSON; never unpickled.

A checkpoint is a folder holding ``checkpoint.json`` (schema, step, options, state that is not
a tensor) and ``tensors.safetensors`` (model and optimizer tensors by name). `save` writes both
atomically (a temporary name, then rename), so an interrupted save leaves the previous
checkpoint intact. `load` refuses, with one line naming the file, anything that is not a
checkpoint of the expected schema. `check_resume_options` refuses a resume whose options
conflict with the checkpoint's, naming each option. `interruptible` turns SIGTERM into
KeyboardInterrupt so that one ``except KeyboardInterrupt`` saves on Ctrl-C and on kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

META = "checkpoint.json"
TENSORS = "tensors.safetensors"
INTERRUPTED_EXIT = 130  # the shell's status for a run ended by SIGINT


def save(folder: str | os.PathLike[str], *, schema: str, meta: Mapping[str, Any],
         tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write ``folder``/checkpoint.json and tensors.safetensors (atomically); return folder."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tmp_t, tmp_m = out / (TENSORS + ".tmp"), out / (META + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp_t))
    tmp_m.write_text(json.dumps({"schema": schema, **meta}, indent=1, default=str))
    os.replace(tmp_t, out / TENSORS)
    os.replace(tmp_m, out / META)
    return out


def load(folder: str | os.PathLike[str], *, schema: str, option: str = "--resume"
         ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(meta, tensors) of a checkpoint folder; ValueError in one line for anything else."""
    from safetensors.torch import load_file

    p = Path(folder)
    if p.is_file() and p.name in (META, TENSORS):
        p = p.parent
    if not p.is_dir() or not (p / META).is_file() or not (p / TENSORS).is_file():
        raise ValueError(f"{option}: {str(folder)!r} is not a checkpoint folder "
                         f"(expected {META} and {TENSORS} in it)")
    try:
        meta = json.loads((p / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{option}: {str(p / META)!r} is not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("schema") != schema:
        found = meta.get("schema") if isinstance(meta, dict) else None
        raise ValueError(f"{option}: {str(folder)!r} is a checkpoint of {found!r}, not {schema!r}")
    try:
        tensors = load_file(str(p / TENSORS))
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{option}: {str(p / TENSORS)!r} is not a safetensors file "
                         f"({type(error).__name__})") from None
    return meta, tensors


def check_resume_options(saved: Mapping[str, Any], given: Mapping[str, Any], *,
                         may_differ: tuple[str, ...] = ()) -> None:
    """Refuse a resume whose explicitly given options conflict with the saved ones.

    ``given`` holds only the options the user set (None for unset ones is skipped);
    ``may_differ`` names options a resume may change (e.g. the step budget)."""
    conflicts = [f"--{k.replace('_', '-')} {given[k]!r} (the checkpoint has {saved[k]!r})"
                 for k in given if k in saved and k not in may_differ
                 and given[k] is not None and _normal(given[k]) != _normal(saved[k])]
    if conflicts:
        raise ValueError("--resume: conflicting options: " + "; ".join(conflicts))


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt like Ctrl-C does, and SIGINT raises it
    even where the process was started with SIGINT ignored (a shell's background job)
    (main thread only)."""
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
