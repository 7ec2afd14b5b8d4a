"""Our Transformer <-> TransformerLens HookedTransformer: same float64 logits both ways; what
one side cannot express is refused; config.json words map both ways."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given

from constructions import induction, interop, modular, transformer
from constructions.transformer import Transformer
from tests import strategies as S

CFG = transformer.Config(n_layers=2, n_heads=3, d_model=8, d_head=4, d_vocab=7, n_ctx=9,
                         d_mlp=16, act_fn="relu", attn_scale=2.0)


def _tl():
    return pytest.importorskip("transformer_lens", reason="TransformerLens is not installed "
                               "(pip install the 'peers' extra)")


def _random(cfg: transformer.Config, seed: int = 0) -> Transformer:
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


def test_induction_model_round_trip_identical_logits() -> None:
    _tl()
    m = induction.build_induction_model(5, 11)
    ht = interop.to_hooked_transformer(m)
    tokens = torch.tensor([[5, 1, 2, 3, 1, 2, 3, 4, 0, 1, 2]])
    assert torch.equal(ht(tokens), m(tokens))
    back = interop.from_hooked_transformer(ht)
    assert back.cfg == m.cfg
    assert torch.equal(back(tokens), m(tokens))
    assert ht.cfg.dtype == torch.float64
    buffers = {k.split(".")[-1] for k, _ in ht.named_buffers()}
    assert set(interop.TL_BUFFERS) <= buffers  # TL built its own mask and IGNORE


@given(S.tl_configs(), S.seeds)
def test_round_trip_any_expressible_model(cfg, seed) -> None:
    _tl()
    model = _random(cfg, seed % 1000)
    ht = interop.to_hooked_transformer(model)
    tokens = torch.randint(0, cfg.d_vocab, (2, cfg.n_ctx), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ht(tokens), model(tokens), rtol=0, atol=1e-12)
    back = interop.from_hooked_transformer(ht)
    assert back.cfg.vocab_out == cfg.vocab_out and back.cfg.attn_scale == cfg.attn_scale
    assert torch.equal(back(tokens), model(tokens))


def test_mlp_and_scale_cross_over() -> None:
    _tl()
    model = _random(CFG)
    ht = interop.to_hooked_transformer(model)
    assert ht.cfg.use_attn_scale and ht.cfg.attn_scale == 2.0 and ht.cfg.act_fn == "relu"
    tokens = torch.randint(0, 7, (3, 9), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ht(tokens), model(tokens), rtol=0, atol=1e-12)


def test_refuses_what_transformer_lens_cannot_express() -> None:
    hard = induction.build_induction_model(4, 6, "hard")
    with pytest.raises(ValueError, match="hard"):
        interop.to_hooked_transformer(hard)
    quadratic = transformer.Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=3,
                                   n_ctx=2, d_mlp=2, act_fn="quadratic")
    with pytest.raises(ValueError, match="quadratic"):
        interop.to_hooked_transformer(_random(quadratic))
    with pytest.raises(TypeError, match="model"):  # the adder is not a Transformer at all
        interop.to_hooked_transformer(modular.build_adder(5))
    with pytest.raises(TypeError, match="model"):
        interop.to_hooked_transformer("not a model")


def test_refuses_layernorm_and_other_tl_features() -> None:
    tl = _tl()
    ln = tl.HookedTransformer(tl.HookedTransformerConfig(
        n_layers=1, d_model=8, n_ctx=5, d_head=4, n_heads=2, d_vocab=7, attn_only=True,
        act_fn=None, normalization_type="LN"))
    with pytest.raises(ValueError, match="normalization_type"):
        interop.from_hooked_transformer(ln)
    with pytest.raises(TypeError, match="HookedTransformer"):
        interop.from_hooked_transformer(object())


BASE = {"n_layers": 1, "d_model": 8, "n_ctx": 5, "d_head": 4, "n_heads": 2, "d_vocab": 7,
        "attn_only": True, "normalization_type": None}


@pytest.mark.parametrize("field, value, words", [
    ("normalization_type", "LNPre", "normalization_type"),
    ("positional_embedding_type", "rotary", "positional_embedding_type"),
    ("gated_mlp", True, "gated"),
    ("n_key_value_heads", 1, "grouped"),
    ("attn_scores_soft_cap", 30.0, "soft cap"),
    ("attention_dir", "bidirectional", "causal"),
    ("dtype", "bfloat16", "dtype"),
    ("n_heads", 0, "n_heads"),
])
def test_config_refusals_name_the_field(field, value, words) -> None:
    with pytest.raises(ValueError, match=words):
        interop.config_from_tl({**BASE, field: value})


def test_config_defaults_follow_transformer_lens() -> None:
    with pytest.raises(ValueError, match="normalization_type"):  # TL's default is LN
        interop.config_from_tl({k: v for k, v in BASE.items() if k != "normalization_type"})
    cfg = interop.config_from_tl(BASE)
    assert cfg.attn_scale == math.sqrt(4)           # use_attn_scale defaults to True
    assert interop.config_from_tl({**BASE, "use_attn_scale": False}).attn_scale == 1.0
    assert interop.config_from_tl({**BASE, "attn_scale": 3.0}).attn_scale == 3.0
    assert cfg.vocab_out == 7 and cfg.dtype == torch.float32
    with pytest.raises(ValueError, match="act_fn"):
        interop.config_from_tl({**BASE, "attn_only": False, "d_mlp": 4, "act_fn": "gelu"})
    with pytest.raises(ValueError, match="missing"):
        interop.config_from_tl({"n_layers": 1})
    with pytest.raises(TypeError, match="mapping"):
        interop.config_from_tl([1, 2])


def test_config_words_round_trip() -> None:
    cfg = interop.config_from_tl(interop.config_to_tl(CFG))
    assert cfg == transformer.Config(**{**CFG.__dict__, "d_vocab_out": 7})


def test_state_dict_checks() -> None:
    cfg = interop.config_from_tl(BASE)
    state = _random(cfg).state_dict()
    with pytest.raises(ValueError, match="no place"):
        interop.from_state_dict(cfg, {**state, "blocks.0.ln1.w": torch.ones(8)})
    with pytest.raises(ValueError, match="missing"):
        interop.from_state_dict(cfg, {k: v for k, v in state.items() if k != "embed.W_E"})
    model = interop.from_state_dict(cfg, {**state, "blocks.0.attn.mask": torch.ones(5, 5)})
    assert torch.equal(model.embed.W_E, state["embed.W_E"])
