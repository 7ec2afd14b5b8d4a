"""A model to analyze, from whatever the user has: our `Transformer`, a TransformerLens
``HookedTransformer``, a folder holding ``config.json`` + ``model.safetensors``, or the name of
a hand-built construction (``induction``).

A model folder: ``config.json`` has TransformerLens ``HookedTransformerConfig`` field names
(missing ones take TL's defaults, so leave out normalization_type and you get LayerNorm, which
is refused); ``model.safetensors`` has TL state_dict names. Nothing is unpickled: safetensors
holds tensors only. `save_folder` writes such a folder from either kind of model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from constructions import induction, interop
from constructions.transformer import Transformer

CONFIG, WEIGHTS = "config.json", "model.safetensors"
NAMED = ("induction",)
INDUCTION_VOCAB, INDUCTION_CTX = 10, 21  # the hand-built model `analyze induction` builds


def load_model(source: Any) -> Transformer:
    """Our `Transformer` for ``source`` (see the module docstring); ValueError/TypeError
    naming what is wrong."""
    if isinstance(source, Transformer):
        return source
    if hasattr(source, "cfg") and type(source).__name__ == "HookedTransformer":
        return interop.from_hooked_transformer(source)
    if isinstance(source, (str, os.PathLike)):
        if str(source) == "induction":
            return induction.build_induction_model(INDUCTION_VOCAB, INDUCTION_CTX, "softmax")
        return load_folder(source)
    raise TypeError(f"model must be a Transformer, a HookedTransformer, a model folder or one of "
                    f"{NAMED}, got {type(source).__name__}")


def load_folder(path: str | os.PathLike[str]) -> Transformer:
    """The model in ``path``/config.json + ``path``/model.safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"PATH {str(p)!r} is not a folder (expected a folder with {CONFIG} and "
                         f"{WEIGHTS}, or one of {', '.join(NAMED)})")
    for name in (CONFIG, WEIGHTS):
        if not (p / name).is_file():
            raise ValueError(f"PATH {str(p)!r} has no {name}")
    try:
        fields = json.loads((p / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(p / CONFIG)!r} is not valid JSON ({error})") from None
    cfg = interop.config_from_tl(fields)
    try:
        state = load_file(str(p / WEIGHTS))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{str(p / WEIGHTS)!r} is not a safetensors file ({error})") from None
    except Exception as error:  # noqa: BLE001 - safetensors raises several error types
        raise ValueError(f"{str(p / WEIGHTS)!r} could not be read ({type(error).__name__})"
                         ) from None
    return interop.from_state_dict(cfg, state)


def save_folder(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (ours or a HookedTransformer) as ``path``/config.json + model.safetensors."""
    from safetensors.torch import save_file

    model = load_model(model) if not isinstance(model, (str, os.PathLike)) else None
    if model is None:
        raise TypeError("model must be a Transformer or a HookedTransformer")
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / CONFIG).write_text(json.dumps(interop.config_to_tl(model.cfg), indent=1))
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(p / WEIGHTS))
    return p
