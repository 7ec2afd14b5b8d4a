"""constructions/interop.py at its edges (mutation testing, issue 13): every refusal message in
full, every TL default read for a missing field, the soft-cap and attention-scale bounds at 0, the
duck-typed config objects `from_hooked_transformer` accepts, and the missing-weight list."""

from __future__ import annotations

import math
import types
import warnings

import pytest
import torch

from constructions import interop, transformer
from constructions.transformer import Transformer

BASE = {"n_layers": 1, "d_model": 4, "n_ctx": 3, "d_head": 4, "n_heads": 1, "d_vocab": 5,
        "attn_only": True, "normalization_type": None}
MLP = {**BASE, "attn_only": False, "d_mlp": 6, "act_fn": "relu"}


def _tl():
    return pytest.importorskip("transformer_lens", reason="TransformerLens is not installed")


def _random(cfg: transformer.Config, seed: int = 0) -> Transformer:
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


# --- config_from_tl: refusals in full ---------------------------------------------------------


def test_config_from_tl_messages():
    with pytest.raises(TypeError, match=r"^config must be a mapping of HookedTransformerConfig "
                                        r"fields, got list$"):
        interop.config_from_tl([1])
    with pytest.raises(ValueError, match=r"^config: missing field\(s\) d_model, n_ctx, d_head, "
                                         r"d_vocab$"):
        interop.config_from_tl({"n_layers": 1})
    # a missing normalization_type is TL's default, LayerNorm, and is named as such
    no_norm = {k: v for k, v in BASE.items() if k != "normalization_type"}
    with pytest.raises(ValueError, match=r"^config: normalization_type 'LN' is not supported \(no "
                                         r"LayerNorm: only models with normalization_type None; a "
                                         r"folded LN is 'LNPre', which still normalizes\)$"):
        interop.config_from_tl(no_norm)
    with pytest.raises(ValueError, match=r"^config: gated_mlp=True is not supported \(gated MLPs "
                                         r"are not supported\)$"):
        interop.config_from_tl({**BASE, "gated_mlp": True})
    with pytest.raises(ValueError, match=r"^config: act_fn 'gelu' is not supported \(only 'relu' "
                                         r"MLPs, or attn_only true\)$"):
        interop.config_from_tl({**MLP, "act_fn": "gelu"})
    with pytest.raises(ValueError, match=r"^config: dtype 'bfloat16' is not supported \(float32, "
                                         r"float64\)$"):
        interop.config_from_tl({**BASE, "dtype": "bfloat16"})
    with pytest.raises(ValueError, match=r"^config: output_logits_soft_cap=2 is not supported "
                                         r"\(soft caps\)$"):
        interop.config_from_tl({**BASE, "output_logits_soft_cap": 2})


def test_every_unsupported_setting_is_refused_and_its_safe_value_accepted():
    for key, (safe, _why) in interop._UNSUPPORTED.items():
        assert interop.config_from_tl({**BASE, key: safe}) == interop.config_from_tl(BASE)
        with pytest.raises(ValueError, match=rf"^config: {key}='other' is not supported "):
            interop.config_from_tl({**BASE, key: "other"})


@pytest.mark.parametrize("key", interop._NO_CAP)
def test_soft_caps_are_off_at_zero_and_below_and_on_above(key):
    for off in (None, 0, 0.0, -1.0):  # TL: a cap <= 0 is no cap
        assert interop.config_from_tl({**BASE, key: off}).n_heads == 1
    for on in (0.5, 1e-9, 30.0):
        with pytest.raises(ValueError, match=rf"^config: {key}={on!r} is not supported"):
            interop.config_from_tl({**BASE, key: on})


def test_attn_only_defaults_to_false_as_in_transformer_lens():
    fields = {k: v for k, v in MLP.items() if k != "attn_only"}
    cfg = interop.config_from_tl(fields)
    assert cfg.d_mlp == 6 and cfg.act_fn == "relu" and not cfg.attn_only
    with pytest.raises(ValueError, match=r"^config: act_fn None is not supported"):
        interop.config_from_tl({k: v for k, v in BASE.items() if k != "attn_only"})


def test_n_heads_missing_none_or_below_one_is_refused_by_name():
    no_heads = {k: v for k, v in BASE.items() if k != "n_heads"}
    with pytest.raises(ValueError, match=r"^config: n_heads must be >= 1, got -1$"):
        interop.config_from_tl(no_heads)
    with pytest.raises(ValueError, match=r"^config: n_heads must be >= 1, got None$"):
        interop.config_from_tl({**BASE, "n_heads": None})
    with pytest.raises(ValueError, match=r"^config: n_heads must be >= 1, got 0$"):
        interop.config_from_tl({**BASE, "n_heads": 0})
    assert interop.config_from_tl({**BASE, "n_heads": 1}).n_heads == 1


def test_dtype_words_and_torch_dtypes():
    assert interop.config_from_tl(BASE).dtype == torch.float32  # TL's default
    for word, dtype in interop.DTYPES.items():
        assert interop.config_from_tl({**BASE, "dtype": word}).dtype == dtype
    assert interop.config_from_tl({**BASE, "dtype": torch.float64}).dtype == torch.float64
    # a torch.dtype is passed on as it is, so the Config's own refusal speaks
    with pytest.raises(ValueError, match=r"^dtype must be torch.float64 or torch.float32, got "
                                         r"torch.float16$"):
        interop.config_from_tl({**BASE, "dtype": torch.float16})


def test_attention_scale_from_tl_fields():
    assert interop.config_from_tl(BASE).attn_scale == 2.0  # sqrt(d_head = 4)
    for unset in (None, -1.0, 0.0, 0):  # TL writes -1 before it fills sqrt(d_head) in
        assert interop.config_from_tl({**BASE, "attn_scale": unset}).attn_scale == 2.0
    assert interop.config_from_tl({**BASE, "attn_scale": 1e-3}).attn_scale == 1e-3
    assert interop.config_from_tl({**BASE, "attn_scale": 3, "use_attn_scale": False}
                                  ).attn_scale == 1.0
    cfg = interop.config_from_tl({**BASE, "d_vocab_out": 9})
    assert cfg.d_vocab_out == 9 and cfg.attention == "softmax"
    assert interop.config_from_tl({**BASE, "d_vocab_out": -1}).d_vocab_out is None


# --- config_to_tl --------------------------------------------------------------------------------


def test_config_to_tl_fields_and_refusals():
    cfg = transformer.Config(n_layers=2, n_heads=3, d_model=4, d_head=5, d_vocab=6, n_ctx=7,
                             d_mlp=8, act_fn="relu", attn_scale=1.5, d_vocab_out=9)
    assert interop.config_to_tl(cfg) == {
        "n_layers": 2, "d_model": 4, "n_ctx": 7, "d_head": 5, "n_heads": 3, "d_vocab": 6,
        "d_vocab_out": 9, "d_mlp": 8, "act_fn": "relu", "attn_only": False,
        "normalization_type": None, "positional_embedding_type": "standard",
        "use_attn_scale": True, "attn_scale": 1.5, "dtype": "float64",
        "default_prepend_bos": False}
    plain = transformer.Config(1, 1, 2, 2, 3, 4, dtype=torch.float32)
    fields = interop.config_to_tl(plain)
    assert fields["use_attn_scale"] is False and fields["dtype"] == "float32"
    assert fields["attn_only"] is True and fields["d_mlp"] is None
    with pytest.raises(ValueError, match=r"^attention='hard': TransformerLens has softmax "
                                         r"attention only \(hard attention is our argmax limit\)$"):
        interop.config_to_tl(transformer.Config(1, 1, 2, 2, 3, 4, attention="hard"))
    with pytest.raises(ValueError, match=r"^act_fn='quadratic': TransformerLens has no quadratic "
                                         r"activation \(x -> x\^2, the adder's\); only 'relu' MLPs "
                                         r"cross over$"):
        interop.config_to_tl(transformer.Config(1, 1, 2, 2, 3, 4, d_mlp=2, act_fn="quadratic"))


# --- to_hooked_transformer -----------------------------------------------------------------


def test_to_hooked_transformer_names_the_wrong_type():
    with pytest.raises(TypeError, match=r"^model must be a constructions.transformer.Transformer, "
                                        r"got str$"):
        interop.to_hooked_transformer("model")


def test_to_hooked_transformer_passes_the_device_and_silences_only_deprecations(monkeypatch):
    tl = _tl()
    seen = {}
    real_cfg, real_model = tl.HookedTransformerConfig, tl.HookedTransformer

    def spy_cfg(**fields):
        seen.update(fields)
        return real_cfg(**fields)

    def noisy_model(cfg):
        warnings.warn("kept", UserWarning, stacklevel=2)
        warnings.warn("dropped", DeprecationWarning, stacklevel=2)
        return real_model(cfg)

    monkeypatch.setattr(tl, "HookedTransformerConfig", spy_cfg)
    monkeypatch.setattr(tl, "HookedTransformer", noisy_model)
    model = _random(interop.config_from_tl({**BASE, "dtype": "float64"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interop.to_hooked_transformer(model, device="cpu")
    assert [str(w.message) for w in caught] == ["kept"]
    assert seen["device"] == "cpu" and seen["dtype"] == torch.float64
    assert "d_mlp" not in seen  # TL infers nothing from d_mlp=None; it is left out


def test_to_hooked_transformer_refuses_weights_tl_did_not_take():
    _tl()
    model = _random(interop.config_from_tl({**BASE, "dtype": "float64"}))
    state = model.state_dict()
    model.state_dict = lambda: {k: v for k, v in state.items() if k != "unembed.b_U"}
    with pytest.raises(ValueError, match=r"^TransformerLens did not take the weights: missing "
                                         r"\['unembed.b_U'\], unexpected \[\]$"):
        interop.to_hooked_transformer(model)
    model.state_dict = lambda: {**state, "blocks.0.ln1.w": torch.ones(4, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"^TransformerLens did not take the weights: missing "
                                         r"\[\], unexpected \['blocks.0.ln1.w'\]$"):
        interop.to_hooked_transformer(model)


# --- from_hooked_transformer: duck-typed configs ------------------------------------------------


class _Fake:
    """Anything with ``cfg`` and ``state_dict``, as `from_hooked_transformer` asks."""

    def __init__(self, cfg: object, state: dict[str, torch.Tensor]) -> None:
        self.cfg, self._state = cfg, state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


class _ToDict:
    """A config object whose fields come only from ``to_dict`` (its attributes say otherwise)."""

    def __init__(self, fields: dict[str, object]) -> None:
        self._fields = fields
        self.n_layers = "not read"

    def to_dict(self) -> dict[str, object]:
        return dict(self._fields)


def test_from_hooked_transformer_reads_to_dict_or_attributes():
    cfg = interop.config_from_tl(BASE)
    model = _random(cfg)
    for cfg_obj in (types.SimpleNamespace(**BASE), _ToDict(BASE)):
        back = interop.from_hooked_transformer(_Fake(cfg_obj, model.state_dict()))
        assert back.cfg == cfg and torch.equal(back.embed.W_E, model.embed.W_E)


def test_from_hooked_transformer_refuses_what_is_not_a_model():
    state = _random(interop.config_from_tl(BASE)).state_dict()
    with pytest.raises(TypeError, match=r"^ht must be a transformer_lens.HookedTransformer, got "
                                        r"SimpleNamespace$"):
        interop.from_hooked_transformer(types.SimpleNamespace(cfg=types.SimpleNamespace(**BASE)))
    with pytest.raises(TypeError, match=r"^ht must be a transformer_lens.HookedTransformer, got "
                                        r"_Fake$"):
        interop.from_hooked_transformer(_Fake(None, state))


# --- from_state_dict: what is missing ------------------------------------------------------------


def test_from_state_dict_lists_missing_weights_and_names_foreign_ones():
    cfg = interop.config_from_tl({**BASE, "n_layers": 2})
    state = _random(cfg).state_dict()

    def without(*names):
        return {k: v for k, v in state.items() if k not in names}

    with pytest.raises(ValueError, match=r"^weights: missing blocks.1.attn.W_Q$"):
        interop.from_state_dict(cfg, without("blocks.1.attn.W_Q"))
    four = ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K")
    with pytest.raises(ValueError, match=r"^weights: missing embed.W_E, pos_embed.W_pos, "
                                         r"blocks.0.attn.W_Q, blocks.0.attn.W_K$"):
        interop.from_state_dict(cfg, without(*four))
    with pytest.raises(ValueError, match=r"^weights: missing embed.W_E, pos_embed.W_pos, "
                                         r"blocks.0.attn.W_Q, blocks.0.attn.W_K ...$"):
        interop.from_state_dict(cfg, without(*four, "blocks.0.attn.W_V"))
    model = interop.from_state_dict(cfg, without("blocks.0.attn.b_Q"))  # biases may be absent
    assert torch.count_nonzero(model.blocks[0].attn.b_Q) == 0
    with pytest.raises(ValueError, match=r"^weights: 'blocks.0.ln1.w' has no place in this model "
                                         r"\(supported: embeddings, attention, ReLU MLP, "
                                         r"unembedding; no LayerNorm\)$"):
        interop.from_state_dict(cfg, {**state, "blocks.0.ln1.w": torch.ones(4)})
    assert math.isclose(model.cfg.attn_scale, 2.0)
