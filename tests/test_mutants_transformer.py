"""constructions/transformer.py, attention_ops.py and random_init.py at their edges (mutation
testing, issue 13): every Config bound at 1 and 0 with its message, the parameter table and its
count, each hook's value, the scale, the causal mask, the hard rule's ties, and the random
initialization's fan-in, all pinned against small hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from constructions import attention_ops, random_init, transformer, validation
from constructions.transformer import Config, Transformer

BASE = dict(n_layers=1, n_heads=1, d_model=1, d_head=1, d_vocab=1, n_ctx=1)


# --- Config ---------------------------------------------------------------------------------


def test_config_defaults_and_properties():
    cfg = Config(**BASE)
    assert (cfg.d_mlp, cfg.act_fn, cfg.attn_scale, cfg.attention, cfg.d_vocab_out, cfg.dtype) == (
        None, None, 1.0, "softmax", None, torch.float64)
    assert cfg.attn_only and cfg.vocab_out == 1
    wide = Config(**{**BASE, "d_vocab": 3, "d_vocab_out": 5, "d_mlp": 1, "act_fn": "relu"})
    assert not wide.attn_only and wide.vocab_out == 5
    assert Config(**{**BASE, "d_vocab": 3}).vocab_out == 3


@pytest.mark.parametrize("name", ["n_layers", "n_heads", "d_model", "d_head", "d_vocab", "n_ctx"])
def test_config_sizes_are_at_least_one(name):
    assert getattr(Config(**BASE), name) == 1  # the bound itself is accepted
    with pytest.raises(ValueError, match=rf"^{name} must be >= 1, got 0$"):
        Config(**{**BASE, name: 0})
    with pytest.raises(TypeError, match=rf"^{name} must be an integer, got float 2.0$"):
        Config(**{**BASE, name: 2.0})


def test_config_mlp_fields():
    with pytest.raises(ValueError, match=r"^act_fn must be None when d_mlp is None "
                                         r"\(attention-only blocks\)$"):
        Config(**BASE, act_fn="relu")
    for act_fn in transformer.ACT_FNS:
        assert Config(**BASE, d_mlp=1, act_fn=act_fn).act_fn == act_fn
    with pytest.raises(ValueError, match=r"^d_mlp must be >= 1, got 0$"):
        Config(**BASE, d_mlp=0, act_fn="relu")
    with pytest.raises(ValueError, match=r"^act_fn must be one of 'relu', 'quadratic'; got None$"):
        Config(**BASE, d_mlp=2)


def test_config_scale_attention_vocab_out_and_dtype():
    with pytest.raises(ValueError, match=r"^attn_scale must be a finite number > 0, got -1.0$"):
        Config(**BASE, attn_scale=-1.0)
    assert Config(**BASE, attention="hard").attention == "hard"
    with pytest.raises(ValueError, match=r"^attention must be one of 'softmax', 'hard'; "
                                         r"got 'sparse'$"):
        Config(**BASE, attention="sparse")
    assert Config(**BASE, d_vocab_out=1).vocab_out == 1
    with pytest.raises(ValueError, match=r"^d_vocab_out must be >= 1, got 0$"):
        Config(**BASE, d_vocab_out=0)
    assert Config(**BASE, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match=r"^dtype must be torch.float64 or torch.float32, got "
                                         r"torch.float16$"):
        Config(**BASE, dtype=torch.float16)


def test_parameter_table_count_and_bytes():
    cfg = Config(n_layers=2, n_heads=3, d_model=4, d_head=5, d_vocab=6, n_ctx=7, d_mlp=8,
                 act_fn="relu", d_vocab_out=9)
    layer = {"attn.W_Q": (3, 4, 5), "attn.W_K": (3, 4, 5), "attn.W_V": (3, 4, 5),
             "attn.W_O": (3, 5, 4), "attn.b_Q": (3, 5), "attn.b_K": (3, 5), "attn.b_V": (3, 5),
             "attn.b_O": (4,), "mlp.W_in": (4, 8), "mlp.b_in": (8,), "mlp.W_out": (8, 4),
             "mlp.b_out": (4,)}
    expected = {"embed.W_E": (6, 4), "pos_embed.W_pos": (7, 4),
                **{f"blocks.0.{k}": v for k, v in layer.items()},
                **{f"blocks.1.{k}": v for k, v in layer.items()},
                "unembed.W_U": (4, 9), "unembed.b_U": (9,)}
    assert list(cfg.parameter_shapes().items()) == list(expected.items())  # order included
    # 6*4 + 7*4 + 2 * (3*60 + 60 + 45 + 4 + 32 + 8 + 32 + 4) + 4*9 + 9
    assert cfg.parameter_count() == 827
    assert cfg.parameter_bytes() == 8 * 827
    assert Config(**{**cfg.__dict__, "dtype": torch.float32}).parameter_bytes() == 4 * 827
    attn_only = Config(n_layers=1, n_heads=1, d_model=2, d_head=3, d_vocab=4, n_ctx=5)
    assert not any(".mlp." in name for name in attn_only.parameter_shapes())
    assert attn_only.parameter_count() == 4 * 2 + 5 * 2 + 3 * 6 + 6 + 3 * 3 + 2 + 2 * 4 + 4


# --- the modules ------------------------------------------------------------------------------


def test_parameters_start_at_zero_in_the_config_dtype():
    for dtype in (torch.float32, torch.float64):
        cfg = Config(n_layers=1, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=3, d_mlp=2,
                     act_fn="quadratic", dtype=dtype)
        params = dict(Transformer(cfg).named_parameters())
        assert {k: tuple(v.shape) for k, v in params.items()} == cfg.parameter_shapes()
        for value in params.values():
            assert value.dtype == dtype and torch.count_nonzero(value) == 0


def test_transformer_refuses_a_non_config_and_a_model_too_large_by_name():
    with pytest.raises(TypeError, match=r"^cfg must be a transformer.Config, got dict$"):
        Transformer(dict(BASE))
    cfg = Config(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=1000, n_ctx=3)
    with validation.memory_limit_set(100), pytest.raises(validation.TooLarge) as info:
        Transformer(cfg)
    assert info.value.what == (f"a Transformer with {cfg.parameter_count():,} parameters "
                               "(d_vocab=1000, d_model=2, n_ctx=3)")
    assert cfg.parameter_count() >= 1000 and "," in info.value.what


def test_set_weights_messages_dtype_and_freezing():
    cfg = Config(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=3, n_ctx=2,
                 dtype=torch.float32)
    model = Transformer(cfg)
    with pytest.raises(ValueError, match=r"^weights: unknown parameter 'W_E'; expected "
                                         r"TransformerLens names such as embed.W_E, "
                                         r"pos_embed.W_pos, blocks.0.attn.W_Q, blocks.0.attn.W_K, "
                                         r"...$"):
        model.set_weights({"W_E": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match=r"^weights\['unembed.b_U'\] must have shape \(3,\), got "
                                         r"\(2,\)$"):
        model.set_weights({"unembed.b_U": [0.0, 1.0]})
    model.set_weights({"unembed.b_U": [0.5, 1.0, 2.0]})  # a list, converted to the dtype
    assert model.unembed.b_U.dtype == torch.float32 and model.unembed.b_U.tolist() == [0.5, 1, 2]
    assert model.unembed.b_U.requires_grad  # set_weights leaves training possible
    frozen = Transformer.from_weights(cfg, {"unembed.b_U": torch.ones(3, dtype=torch.float64)})
    assert not any(p.requires_grad for p in frozen.parameters())
    assert frozen.unembed.b_U.tolist() == [1.0, 1.0, 1.0] and frozen.embed.W_E.abs().sum() == 0


def test_weights_are_detached_copies():
    cfg = Config(**BASE)
    model = Transformer.from_weights(cfg, {"embed.W_E": [[2.0]]})
    weights = model.weights()
    assert list(weights) == list(cfg.parameter_shapes())
    weights["embed.W_E"] += 1
    assert float(model.embed.W_E) == 2.0 and not weights["embed.W_E"].requires_grad


def test_lists_are_read_in_the_model_dtype_not_torch_default():
    model = Transformer(Config(**BASE))  # float64; torch's default dtype is float32
    model.set_weights({"embed.W_E": [[0.1]], "unembed.b_U": (1 / 3,)})
    assert model.embed.W_E.item() == 0.1 and model.unembed.b_U.tolist() == [1 / 3]


def _one_head_model(attention: str = "softmax", attn_scale: float = 1.0, mlp: str | None = None
                    ) -> Transformer:
    """d_model 2 (coordinate 0: the token's value, 1: a constant 1); one head whose query is
    the value, key the value, value the value, written back to coordinate 1."""
    cfg = Config(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=3, n_ctx=4,
                 attention=attention, attn_scale=attn_scale,
                 d_mlp=None if mlp is None else 1, act_fn=mlp)
    w = {"embed.W_E": [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]],
         "pos_embed.W_pos": [[0.0, 0.0], [0.0, 0.5], [0.0, 1.0], [0.0, 1.5]],
         "blocks.0.attn.W_Q": [[[1.0], [0.0]]], "blocks.0.attn.W_K": [[[1.0], [0.0]]],
         "blocks.0.attn.W_V": [[[1.0], [0.0]]], "blocks.0.attn.W_O": [[[0.0, 1.0]]],
         "blocks.0.attn.b_Q": [[0.25]], "blocks.0.attn.b_V": [[0.5]],
         "blocks.0.attn.b_O": [0.0, 0.125],
         "unembed.W_U": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "unembed.b_U": [0.0, 0.0, 3.0]}
    if mlp is not None:
        w.update({"blocks.0.mlp.W_in": [[1.0], [-1.0]], "blocks.0.mlp.b_in": [0.5],
                  "blocks.0.mlp.W_out": [[1.0, 0.0]], "blocks.0.mlp.b_out": [0.0, 0.25]})
    return Transformer.from_weights(cfg, w)


TOL = 1e-13  # float64 rounding of a few dozen operations on numbers below 20


def _close(actual: torch.Tensor, expected: list) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=TOL)


@pytest.mark.parametrize("attention", ["softmax", "hard"])
@pytest.mark.parametrize("attn_scale", [1.0, 2.0])
@pytest.mark.parametrize("mlp", [None, "relu", "quadratic"])
def test_every_hook_by_hand(attention, attn_scale, mlp):
    model = _one_head_model(attention, attn_scale, mlp)
    tokens = [2, 0, 2]
    logits, cache = model.run_with_cache(torch.tensor([tokens]))
    assert torch.equal(model(torch.tensor([tokens])), logits)
    embed = [[float(t), 1.0] for t in tokens]
    pos = [[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]
    x = [[e[0] + p[0], e[1] + p[1]] for e, p in zip(embed, pos)]
    assert cache["hook_embed"][0].tolist() == embed and cache["hook_pos_embed"][0].tolist() == pos
    assert cache["blocks.0.hook_resid_pre"][0].tolist() == x
    q = [r[0] + 0.25 for r in x]
    k = [r[0] for r in x]  # b_K is zero
    v = [r[0] + 0.5 for r in x]
    assert cache["blocks.0.attn.hook_q"][0, :, 0, 0].tolist() == q
    assert cache["blocks.0.attn.hook_k"][0, :, 0, 0].tolist() == k
    assert cache["blocks.0.attn.hook_v"][0, :, 0, 0].tolist() == v
    scores = cache["blocks.0.attn.hook_attn_scores"][0, 0]
    pattern = cache["blocks.0.attn.hook_pattern"][0, 0]
    attn_out = []
    for i in range(3):
        row = [q[i] * k[j] / attn_scale for j in range(i + 1)]
        assert scores[i, : i + 1].tolist() == row
        assert all(s == float("-inf") for s in scores[i, i + 1:].tolist())  # the future, masked
        if attention == "softmax":
            top = max(row)
            e = [math.exp(s - top) for s in row]
            weights = [u / sum(e) for u in e]
        else:
            weights = [1.0 / row.count(max(row)) if s == max(row) else 0.0 for s in row]
        assert pattern[i, : i + 1].tolist() == pytest.approx(weights, abs=1e-15)
        assert pattern[i, i + 1:].tolist() == [0.0] * (2 - i)
        z = sum(wj * v[j] for j, wj in enumerate(weights))
        assert float(cache["blocks.0.attn.hook_z"][0, i, 0, 0]) == pytest.approx(z, abs=1e-15)
        attn_out.append([0.0, z + 0.125])
    _close(cache["blocks.0.hook_attn_out"][0], attn_out)
    resid = [[a + b for a, b in zip(r, o)] for r, o in zip(x, attn_out)]
    if mlp is None:
        assert "blocks.0.hook_resid_mid" not in cache and "blocks.0.mlp.hook_pre" not in cache
    else:
        _close(cache["blocks.0.hook_resid_mid"][0], resid)
        pre = [r[0] - r[1] + 0.5 for r in resid]
        post = [max(u, 0.0) if mlp == "relu" else u * u for u in pre]
        _close(cache["blocks.0.mlp.hook_pre"][0, :, 0], pre)
        _close(cache["blocks.0.mlp.hook_post"][0, :, 0], post)
        mlp_out = [[u, 0.25] for u in post]
        _close(cache["blocks.0.hook_mlp_out"][0], mlp_out)
        resid = [[a + b for a, b in zip(r, o)] for r, o in zip(resid, mlp_out)]
    _close(cache["blocks.0.hook_resid_post"][0], resid)
    assert torch.equal(cache["unembed.hook_in"], cache["blocks.0.hook_resid_post"])
    expected = [[r[0], r[1], 3.0] for r in resid]
    _close(logits[0], expected)
    assert torch.equal(cache["unembed.hook_out"], logits)


def test_attention_accessor_and_forward_shapes():
    model = _one_head_model()
    assert model.attention(0) is model.blocks[0].attn
    assert model(torch.tensor([[1], [2]])).shape == (2, 1, 3)


# --- attention_ops ---------------------------------------------------------------------------


def test_per_head_is_x_w_plus_b_for_every_head():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    W = torch.randn(5, 4, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    out = attention_ops._per_head(x, W, b)
    assert out.shape == (2, 3, 5, 2)
    torch.testing.assert_close(out, torch.einsum("bpd,hde->bphe", x, W) + b, rtol=0, atol=1e-14)


def test_attention_pattern_rules():
    inf = float("-inf")
    scores = torch.tensor([[[1.0, inf, inf], [2.0, 2.0, inf], [0.0, 3.0, 3.0]],
                           [[5.0, inf, inf], [1.0, 0.0, inf], [1.0, 1.0, 1.0]]],
                          dtype=torch.float64)
    hard = attention_ops.attention_pattern(scores, "hard")
    assert hard.tolist() == [[[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]],
                             [[1, 0, 0], [1, 0, 0], [1 / 3, 1 / 3, 1 / 3]]]
    assert hard.dtype == torch.float64
    soft = attention_ops.attention_pattern(scores, "softmax")
    torch.testing.assert_close(soft, torch.softmax(scores, dim=-1), rtol=0, atol=0)
    assert soft[1, 1].tolist() == pytest.approx([math.e / (1 + math.e), 1 / (1 + math.e), 0.0])


# --- random_init -----------------------------------------------------------------------------


def test_random_weights_are_gaussian_over_the_stated_fan_in():
    cfg = Config(n_layers=1, n_heads=2, d_model=3, d_head=4, d_vocab=5, n_ctx=6, d_mlp=7,
                 act_fn="relu", dtype=torch.float32)
    # fan_in: the second-to-last size of a matrix (the last of a vector)
    fan_in = {"embed.W_E": 5, "pos_embed.W_pos": 6, "blocks.0.attn.W_Q": 3,
              "blocks.0.attn.W_K": 3, "blocks.0.attn.W_V": 3, "blocks.0.attn.W_O": 4,
              "blocks.0.attn.b_Q": 2, "blocks.0.attn.b_K": 2, "blocks.0.attn.b_V": 2,
              "blocks.0.attn.b_O": 3, "blocks.0.mlp.W_in": 3, "blocks.0.mlp.b_in": 7,
              "blocks.0.mlp.W_out": 7, "blocks.0.mlp.b_out": 3, "unembed.W_U": 3,
              "unembed.b_U": 5}
    weights = random_init.random_weights(cfg, seed=11, scale=3.0)
    assert list(weights) == list(fan_in)
    gen = torch.Generator().manual_seed(11)
    for name, shape in cfg.parameter_shapes().items():
        expected = torch.randn(*shape, generator=gen, dtype=torch.float32) * 3.0 / fan_in[name] ** 0.5
        assert weights[name].dtype == torch.float32 and torch.equal(weights[name], expected), name
    assert transformer.random_weights is random_init.random_weights
    default = random_init.random_weights(cfg, seed=11)
    torch.testing.assert_close(3.0 * default["embed.W_E"], weights["embed.W_E"])
    assert not torch.equal(random_init.random_weights(cfg, seed=12)["embed.W_E"], default["embed.W_E"])


def test_random_weights_without_biases_leave_out_every_bias_and_keep_the_stream():
    cfg = Config(n_layers=1, n_heads=2, d_model=3, d_head=4, d_vocab=5, n_ctx=6, d_mlp=7,
                 act_fn="relu")
    plain = random_init.random_weights(cfg, seed=2, biases=False)
    assert sorted(plain) == sorted(n for n in cfg.parameter_shapes() if ".b_" not in n)
    gen = torch.Generator().manual_seed(2)
    first = torch.randn(5, 3, generator=gen, dtype=torch.float64) / 5 ** 0.5
    assert torch.equal(plain["embed.W_E"], first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device (CUDA)")
def test_a_model_on_another_device_takes_tokens_from_the_cpu():
    """The causal mask is built on the activations' device and the tokens are moved to the
    weights' device (on a CPU-only machine the two placements cannot be told apart)."""
    model = _one_head_model(mlp="relu")
    tokens = torch.tensor([[2, 0, 2]])
    expected = model(tokens)
    logits = model.to("cuda")(tokens)
    assert logits.device.type == "cuda"
    torch.testing.assert_close(logits.cpu(), expected, rtol=0, atol=TOL)
