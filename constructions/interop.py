"""Our `Transformer` <-> TransformerLens 3.x ``HookedTransformer``, and their config words.

`to_hooked_transformer` and `from_hooked_transformer` move the same weights across: TL's
state_dict has exactly our parameter names plus two buffers per layer, ``attn.mask`` (the
causal mask) and ``attn.IGNORE`` (the value masked scores take), which TL builds itself. The
dtype is kept (float64 gives logits equal to rounding; tests/test_interop.py checks it).
Attention scale: our scores are divided by ``attn_scale``; TL divides by its ``attn_scale``
when ``use_attn_scale`` is True (default sqrt(d_head)) and not at all otherwise.

What only one side can express is refused with a ValueError naming the setting:
ours -> TL: hard attention (the argmax limit) and the quadratic activation (the adder's
x -> x^2); TL -> ours: LayerNorm / RMSNorm of any kind (fold it into the weights first: TL's
``fold_ln`` leaves an "LNPre" normalization, which still divides by the norm, so it is refused
too), rotary / shortformer / ALiBi positions, gated or parallel MLPs, grouped-query attention,
local attention, soft caps, activations other than ReLU. `config_from_tl` applies the same rules
to the dict of a ``config.json`` (TL's field names and TL's defaults for missing fields).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from constructions.transformer import Config, Transformer

TL_BUFFERS = ("mask", "IGNORE")  # per-layer attention buffers TL builds; ours has none
DTYPES = {"float32": torch.float32, "float64": torch.float64,
          "torch.float32": torch.float32, "torch.float64": torch.float64}

# TL settings we cannot run, with the value (or test) under which they are harmless; TL's
# defaults are the harmless values, so a config that leaves them out is accepted.
_UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "positional_embedding_type": ("standard", "only learned absolute positions (W_pos)"),
    "gated_mlp": (False, "gated MLPs are not supported"),
    "parallel_attn_mlp": (False, "parallel attention/MLP blocks are not supported"),
    "n_key_value_heads": (None, "grouped-query attention is not supported"),
    "final_rms": (False, "RMSNorm is not supported"),
    "uses_rms_norm": (False, "RMSNorm is not supported"),
    "use_qk_norm": (False, "query/key normalization is not supported"),
    "clip_qkv": (None, "clipped q/k/v are not supported"),
    "use_logn_attn": (False, "log-n attention scaling is not supported"),
    "use_local_attn": (False, "local attention is not supported"),
    "attn_types": (None, "local/global attention types are not supported"),
    "attention_dir": ("causal", "only causal attention"),
    "scale_attn_by_inverse_layer_idx": (False, "per-layer attention scaling is not supported"),
    "num_experts": (None, "mixture-of-experts MLPs are not supported"),
    "post_embedding_ln": (False, "LayerNorm is not supported"),
    "use_normalization_before_and_after": (False, "LayerNorm is not supported"),
    "use_attention_sinks": (False, "attention sinks are not supported"),
}
_NO_CAP = ("attn_scores_soft_cap", "output_logits_soft_cap")  # <= 0 means off in TL


def config_from_tl(d: Mapping[str, Any]) -> Config:
    """Our `Config` from TL ``HookedTransformerConfig`` fields (a dict, e.g. config.json)."""
    if not isinstance(d, Mapping):
        raise TypeError(f"config must be a mapping of HookedTransformerConfig fields, "
                        f"got {type(d).__name__}")
    missing = [k for k in ("n_layers", "d_model", "n_ctx", "d_head", "d_vocab") if k not in d]
    if missing:
        raise ValueError(f"config: missing field(s) {', '.join(missing)}")
    norm = d.get("normalization_type", "LN")  # TL's default is LN
    if norm is not None:
        raise ValueError(f"config: normalization_type {norm!r} is not supported (no LayerNorm: "
                         "only models with normalization_type None; a folded LN is 'LNPre', "
                         "which still normalizes)")
    for key, (safe, why) in _UNSUPPORTED.items():
        if key in d and d[key] != safe:
            raise ValueError(f"config: {key}={d[key]!r} is not supported ({why})")
    for key in _NO_CAP:
        if d.get(key) is not None and float(d[key]) > 0:
            raise ValueError(f"config: {key}={d[key]!r} is not supported (soft caps)")
    attn_only = bool(d.get("attn_only", False))
    act_fn = d.get("act_fn")
    if not attn_only and act_fn != "relu":
        raise ValueError(f"config: act_fn {act_fn!r} is not supported (only 'relu' MLPs, or "
                         "attn_only true)")
    n_heads = d.get("n_heads", -1)
    if n_heads is None or int(n_heads) < 1:
        raise ValueError(f"config: n_heads must be >= 1, got {n_heads!r}")
    d_vocab_out = d.get("d_vocab_out", -1)
    dtype = d.get("dtype", "float32")
    dtype = dtype if isinstance(dtype, torch.dtype) else DTYPES.get(str(dtype))
    if dtype is None:
        raise ValueError(f"config: dtype {d.get('dtype')!r} is not supported (float32, float64)")
    return Config(n_layers=int(d["n_layers"]), n_heads=int(n_heads), d_model=int(d["d_model"]),
                  d_head=int(d["d_head"]), d_vocab=int(d["d_vocab"]), n_ctx=int(d["n_ctx"]),
                  d_mlp=None if attn_only else int(d["d_mlp"]),
                  act_fn=None if attn_only else "relu",
                  attn_scale=_attn_scale(d), attention="softmax",
                  d_vocab_out=None if d_vocab_out in (None, -1) else int(d_vocab_out),
                  dtype=dtype)


def _attn_scale(d: Mapping[str, Any]) -> float:
    """TL: scores / attn_scale if use_attn_scale (default True; attn_scale default sqrt(d_head),
    written as -1 before TL fills it in), else no scaling."""
    if not d.get("use_attn_scale", True):
        return 1.0
    scale = d.get("attn_scale", -1.0)
    return math.sqrt(int(d["d_head"])) if scale is None or float(scale) <= 0 else float(scale)


def config_to_tl(cfg: Config) -> dict[str, Any]:
    """The TL fields that describe ``cfg`` (JSON-ready: dtype as a string)."""
    if cfg.attention != "softmax":
        raise ValueError(f"attention={cfg.attention!r}: TransformerLens has softmax attention "
                         "only (hard attention is our argmax limit)")
    if cfg.act_fn not in (None, "relu"):
        raise ValueError(f"act_fn={cfg.act_fn!r}: TransformerLens has no quadratic activation "
                         "(x -> x^2, the adder's); only 'relu' MLPs cross over")
    return {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_ctx": cfg.n_ctx,
            "d_head": cfg.d_head, "n_heads": cfg.n_heads, "d_vocab": cfg.d_vocab,
            "d_vocab_out": cfg.vocab_out, "d_mlp": cfg.d_mlp, "act_fn": cfg.act_fn,
            "attn_only": cfg.attn_only, "normalization_type": None,
            "positional_embedding_type": "standard", "use_attn_scale": cfg.attn_scale != 1.0,
            "attn_scale": cfg.attn_scale, "dtype": str(cfg.dtype).removeprefix("torch."),
            "default_prepend_bos": False}


def to_hooked_transformer(model: Transformer, device: str = "cpu"):  # noqa: ANN201
    """The same weights in a TransformerLens ``HookedTransformer`` (see the module docstring)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a constructions.transformer.Transformer, "
                        f"got {type(model).__name__}")
    fields = config_to_tl(model.cfg)
    fields["dtype"] = model.cfg.dtype
    if fields["d_mlp"] is None:
        del fields["d_mlp"]
    with warnings.catch_warnings():  # TL 3.x announces HookedTransformer's successor; we use it
        warnings.simplefilter("ignore", DeprecationWarning)
        ht = HookedTransformer(HookedTransformerConfig(**fields, device=device))
    result = ht.load_state_dict(model.state_dict(), strict=False)
    bad = [k for k in result.missing_keys if k.split(".")[-1] not in TL_BUFFERS]
    if result.unexpected_keys or bad:
        raise ValueError(f"TransformerLens did not take the weights: missing {bad}, "
                         f"unexpected {result.unexpected_keys}")
    return ht.eval()


def from_hooked_transformer(ht: Any) -> Transformer:
    """Our `Transformer` with the weights of a ``HookedTransformer`` (frozen)."""
    cfg_obj = getattr(ht, "cfg", None)
    if cfg_obj is None or not hasattr(ht, "state_dict"):
        raise TypeError(f"ht must be a transformer_lens.HookedTransformer, got {type(ht).__name__}")
    cfg = config_from_tl(cfg_obj.to_dict() if hasattr(cfg_obj, "to_dict") else vars(cfg_obj))
    return from_state_dict(cfg, ht.state_dict())


def from_state_dict(cfg: Config, state: Mapping[str, torch.Tensor]) -> Transformer:
    """A frozen `Transformer` from TL-named tensors: TL's buffers are dropped, any other
    unknown name (a LayerNorm weight, say) or a missing weight matrix is a ValueError."""
    shapes = cfg.parameter_shapes()
    weights = {}
    for name, value in state.items():
        if name.split(".")[-1] in TL_BUFFERS:
            continue
        if name not in shapes:
            raise ValueError(f"weights: {name!r} has no place in this model (supported: "
                             "embeddings, attention, ReLU MLP, unembedding; no LayerNorm)")
        weights[name] = value.detach().cpu()
    needed = [n for n in shapes if n.split(".")[-1].startswith("W_") and n not in weights]
    if needed:
        raise ValueError(f"weights: missing {', '.join(needed[:4])}"
                         f"{' ...' if len(needed) > 4 else ''}")
    return Transformer.from_weights(cfg, weights)
