"""The Transformer core against an independent per-head, per-position loop written in numpy,
against the SymPy mirror, and against TransformerLens's HookedTransformer when installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, note
from hypothesis import strategies as st

from constructions import exact, transformer, validation
from tests import strategies as S


def reference_logits(cfg: transformer.Config, w: dict[str, torch.Tensor], tokens: list[int]
                     ) -> np.ndarray:
    """A deliberately naive forward: loops over layers, heads, queries and keys."""
    W = {k: v.numpy() for k, v in w.items()}
    n = len(tokens)
    x = np.stack([W["embed.W_E"][t] + W["pos_embed.W_pos"][i] for i, t in enumerate(tokens)])
    for layer in range(cfg.n_layers):
        a = f"blocks.{layer}.attn."
        out = np.tile(W[a + "b_O"], (n, 1))
        for h in range(cfg.n_heads):
            q = x @ W[a + "W_Q"][h] + W[a + "b_Q"][h]
            k = x @ W[a + "W_K"][h] + W[a + "b_K"][h]
            v = x @ W[a + "W_V"][h] + W[a + "b_V"][h]
            for i in range(n):
                scores = [float(q[i] @ k[j]) / cfg.attn_scale for j in range(i + 1)]
                if cfg.attention == "softmax":
                    top = max(scores)
                    e = [math.exp(s - top) for s in scores]
                    weights = [u / sum(e) for u in e]
                else:
                    top = max(scores)
                    winners = [s == top for s in scores]
                    weights = [wi / sum(winners) for wi in winners]
                z = sum(weights[j] * v[j] for j in range(i + 1))
                out[i] += z @ W[a + "W_O"][h]
        x = x + out
        if cfg.d_mlp is not None:
            m = f"blocks.{layer}.mlp."
            pre = x @ W[m + "W_in"] + W[m + "b_in"]
            post = np.maximum(pre, 0) if cfg.act_fn == "relu" else pre**2
            x = x + post @ W[m + "W_out"] + W[m + "b_out"]
    return x @ W["unembed.W_U"] + W["unembed.b_U"]


@given(cfg=S.configs(), seed=S.seeds, data=st.data())
def test_model_matches_naive_reference(cfg, seed, data):
    weights = transformer.random_weights(cfg, seed=seed, scale=1.5)
    model = transformer.Transformer.from_weights(cfg, weights)
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    logits = model(tokens)
    assert logits.shape == (*tokens.shape, cfg.vocab_out)
    for b in range(tokens.shape[0]):
        ref = reference_logits(cfg, model.weights(), tokens[b].tolist())
        note(f"row {b}: {tokens[b].tolist()}")
        np.testing.assert_allclose(logits[b].numpy(), ref, rtol=1e-10, atol=1e-10)


def test_hard_attention_shares_ties_equally():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=2, d_head=1, d_vocab=2, n_ctx=4,
                             attention="hard")
    # W_Q = W_K = 0: every score is 0, so every earlier position ties and shares equally.
    weights = {"embed.W_E": torch.eye(2), "blocks.0.attn.W_V": torch.tensor([[[1.0], [0.0]]]),
               "blocks.0.attn.W_O": torch.tensor([[[1.0, 0.0]]])}
    model = transformer.Transformer.from_weights(cfg, weights)
    _, cache = model.run_with_cache(torch.tensor([[0, 1, 1, 0]]))
    pattern = cache["blocks.0.attn.hook_pattern"][0, 0]
    expected = torch.tensor([[1, 0, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0],
                             [1 / 4, 1 / 4, 1 / 4, 1 / 4]], dtype=torch.float64)
    assert torch.equal(pattern, expected)


def test_cache_uses_transformerlens_hook_names_and_shapes():
    cfg = transformer.Config(n_layers=2, n_heads=3, d_model=4, d_head=2, d_vocab=5, n_ctx=6,
                             d_mlp=7, act_fn="relu")
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=1))
    logits, cache = model.run_with_cache(torch.tensor([[0, 1, 2, 3, 4]]))
    assert cache["blocks.1.attn.hook_pattern"].shape == (1, 3, 5, 5)
    assert cache["blocks.1.attn.hook_attn_scores"].shape == (1, 3, 5, 5)
    assert cache["blocks.0.attn.hook_z"].shape == (1, 5, 3, 2)
    assert cache["blocks.0.mlp.hook_post"].shape == (1, 5, 7)
    assert torch.equal(cache["blocks.1.hook_resid_post"] @ model.unembed.W_U + model.unembed.b_U,
                       logits)
    for name in ("hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre",
                 "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out",
                 "blocks.0.mlp.hook_pre", "blocks.1.attn.hook_q", "blocks.1.attn.hook_k",
                 "blocks.1.attn.hook_v"):
        assert name in cache
    # the pattern is causal and each row sums to one
    pattern = cache["blocks.0.attn.hook_pattern"][0]
    assert torch.all(pattern.triu(1) == 0)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(3, 5, dtype=torch.float64))


def test_state_dict_keys_are_transformerlens_names():
    cfg = transformer.Config(n_layers=1, n_heads=2, d_model=3, d_head=2, d_vocab=4, n_ctx=5,
                             d_mlp=6, act_fn="quadratic")
    keys = set(transformer.Transformer(cfg).state_dict())
    assert keys == set(cfg.parameter_shapes())
    assert {"embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.b_O",
            "blocks.0.mlp.W_in", "blocks.0.mlp.b_out", "unembed.W_U", "unembed.b_U"} <= keys
    assert transformer.Transformer(cfg).state_dict()["blocks.0.attn.W_O"].shape == (2, 2, 3)


@given(cfg=S.configs(max_layers=2, max_heads=2, max_width=3, max_vocab=3, max_ctx=3, mlp=None),
       seed=S.seeds, data=st.data())
def test_sympy_mirror_equals_torch_on_rational_weights(cfg, seed, data):
    # weights on a dyadic grid (multiples of 1/4) are exact in both arithmetics
    weights = {k: (4 * v).round() / 4 for k, v in
               transformer.random_weights(cfg, seed=seed, scale=2.0).items()}
    model = transformer.Transformer.from_weights(cfg, weights)
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx, max_batch=1))
    exact_logits = exact.exact_forward(cfg, exact.exact_weights(model), tokens[0].tolist())
    as_float = torch.tensor([[float(sp.N(v, 30)) for v in exact_logits.row(i)]
                             for i in range(exact_logits.rows)], dtype=torch.float64)
    torch.testing.assert_close(model(tokens)[0], as_float, rtol=1e-9, atol=1e-9)


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture
def small_model():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=3, n_ctx=4)
    return transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=0))


@pytest.mark.parametrize("tokens, error, words", [
    (torch.tensor([[0, 3]]), ValueError, "tokens must lie in [0, 2]"),
    (torch.tensor([[0, -1]]), ValueError, "tokens must lie in"),
    (torch.tensor([[0, 1, 2, 0, 1]]), ValueError, "n_ctx=4"),
    (torch.tensor([[0.0, 1.0]]), TypeError, "integer dtype"),
    (torch.tensor([0, 1]), ValueError, "[batch, pos]"),
    ([[0, 1]], TypeError, "torch.LongTensor"),
])
def test_bad_tokens_are_rejected_with_the_argument_named(small_model, tokens, error, words):
    with pytest.raises(error, match="tokens") as info:
        small_model(tokens)
    assert words in str(info.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"n_layers": 0}, "n_layers must be >= 1"),
    ({"d_model": 2.5}, "d_model must be an integer"),
    ({"attention": "sparse"}, "attention must be one of"),
    ({"attn_scale": 0.0}, "attn_scale must be a finite number > 0"),
    ({"d_mlp": 3}, "act_fn must be one of"),
    ({"act_fn": "relu"}, "act_fn must be None when d_mlp is None"),
    ({"d_mlp": 3, "act_fn": "gelu"}, "act_fn must be one of"),
])
def test_bad_config_is_rejected(kwargs, words):
    base = dict(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=3, n_ctx=4)
    with pytest.raises((ValueError, TypeError)) as info:
        transformer.Config(**{**base, **kwargs})
    assert words in str(info.value)


def test_bad_weights_are_rejected(small_model):
    with pytest.raises(ValueError, match=r"weights\['embed.W_E'\] must have shape \(3, 2\)"):
        small_model.set_weights({"embed.W_E": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="unknown parameter 'W_E'"):
        small_model.set_weights({"W_E": torch.zeros(3, 2)})


# --- TransformerLens as a peer oracle --------------------------------------------------------


def _hooked(cfg: transformer.Config, state: dict[str, torch.Tensor]):
    tl = pytest.importorskip("transformer_lens")
    import warnings
    hcfg = tl.HookedTransformerConfig(
        n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_model=cfg.d_model, d_head=cfg.d_head,
        d_vocab=cfg.d_vocab, d_vocab_out=cfg.vocab_out, n_ctx=cfg.n_ctx,
        attn_only=cfg.attn_only, d_mlp=cfg.d_mlp, act_fn=cfg.act_fn,
        normalization_type=None, use_attn_scale=False, positional_embedding_type="standard",
        dtype=torch.float64, default_prepend_bos=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = tl.HookedTransformer(hcfg)
    state = dict(state)
    if cfg.attn_scale != 1.0:  # TransformerLens has no free scale: fold it into the queries
        for layer in range(cfg.n_layers):
            for name in ("W_Q", "b_Q"):
                state[f"blocks.{layer}.attn.{name}"] = state[f"blocks.{layer}.attn.{name}"] / \
                    cfg.attn_scale
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == []
    assert all(k.endswith((".mask", ".IGNORE")) for k in missing), missing
    return model


@given(cfg=S.configs(attention="softmax", mlp=False), seed=S.seeds, data=st.data())
def test_state_dict_loads_into_hooked_transformer_with_same_logits(cfg, seed, data):
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))
    hooked = _hooked(cfg, model.state_dict())
    tokens = data.draw(S.token_batches(d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx))
    with torch.no_grad():
        theirs, their_cache = hooked.run_with_cache(tokens)
    ours, our_cache = model.run_with_cache(tokens)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(our_cache["blocks.0.attn.hook_pattern"],
                               their_cache["blocks.0.attn.hook_pattern"], rtol=1e-10, atol=1e-10)


def test_relu_mlp_model_matches_hooked_transformer():
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=5, d_head=3, d_vocab=6, n_ctx=7,
                             d_mlp=8, act_fn="relu", attn_scale=2.0)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=3))
    hooked = _hooked(cfg, model.state_dict())
    tokens = torch.tensor([[0, 5, 2, 2, 4, 1, 3], [1, 1, 1, 0, 0, 0, 5]])
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), hooked(tokens), rtol=1e-10, atol=1e-10)


def test_every_cached_activation_has_transformerlens_name_and_value():
    """Our cache's names are a subset of HookedTransformer's (no LayerNorm hooks on our side),
    `unembed.hook_in` / `unembed.hook_out` included, and hold the same activations."""
    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=5, d_head=3, d_vocab=6, n_ctx=7,
                             d_mlp=8, act_fn="relu")
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=4))
    hooked = _hooked(cfg, model.state_dict())
    tokens = torch.tensor([[0, 5, 2, 2, 4, 1, 3]])
    logits, ours = model.run_with_cache(tokens)
    with torch.no_grad():
        _, theirs = hooked.run_with_cache(tokens)
    assert "logits" not in ours
    assert {"unembed.hook_in", "unembed.hook_out"} <= set(ours)
    assert set(ours) <= set(theirs.keys()), set(ours) - set(theirs.keys())
    for name, value in ours.items():
        torch.testing.assert_close(value, theirs[name], rtol=1e-10, atol=1e-10, msg=name)
    assert torch.equal(ours["unembed.hook_out"], logits)


# --- sizes that cannot fit are refused before allocating ----------------------------------------


def test_parameter_count_matches_the_allocated_model():
    cfg = transformer.Config(n_layers=2, n_heads=3, d_model=4, d_head=2, d_vocab=5, n_ctx=6,
                             d_mlp=7, act_fn="relu", d_vocab_out=9)
    model = transformer.Transformer(cfg)
    assert cfg.parameter_count() == sum(p.numel() for p in model.parameters())
    assert cfg.parameter_bytes() == 8 * cfg.parameter_count()
    assert transformer.Config(1, 1, 2, 2, 3, 4, dtype=torch.float32).parameter_bytes() == \
        4 * transformer.Config(1, 1, 2, 2, 3, 4).parameter_count()


def test_a_vocabulary_of_a_billion_is_refused_with_the_estimate():
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=64, d_head=8, d_vocab=10**9, n_ctx=8)
    with pytest.raises(validation.TooLarge, match=r"needs about 1\.03 TB .*CIRCUIT_PROOFS_MAX"):
        transformer.Transformer(cfg)


def test_the_limit_is_inclusive_and_can_be_raised(monkeypatch):
    cfg = transformer.Config(n_layers=1, n_heads=1, d_model=4, d_head=2, d_vocab=5, n_ctx=6)
    need = cfg.parameter_bytes()
    with validation.memory_limit_set(need):              # at the bound: accepted
        transformer.Transformer(cfg)
    with validation.memory_limit_set(need - 1), pytest.raises(validation.TooLarge) as info:
        transformer.Transformer(cfg)                     # one byte below: refused
    assert (info.value.estimate, info.value.limit) == (need, need - 1)
    monkeypatch.setenv(validation.MEMORY_ENV, str(need / 1e9))
    assert validation.memory_limit() == need
    transformer.Transformer(cfg)
    monkeypatch.setenv(validation.MEMORY_ENV, "lots")
    with pytest.raises(ValueError, match="CIRCUIT_PROOFS_MAX_MEMORY_GB must be a number"):
        validation.memory_limit()
    monkeypatch.setenv(validation.MEMORY_ENV, "0")
    with pytest.raises(ValueError, match="must be > 0"):
        validation.memory_limit()
    monkeypatch.delenv(validation.MEMORY_ENV)
    assert validation.memory_limit() == int(validation.MEMORY_FRACTION *
                                            validation.physical_memory())
    with pytest.raises(ValueError, match="n_bytes must be >= 1"):
        with validation.memory_limit_set(0):
            pass


@pytest.mark.parametrize("n, text", [(999, "999 bytes"), (1000, "1 kB"), (1.5e9, "1.5 GB"),
                                     (2.4e17, "2.4e+05 TB"), (3e18, "3.00e+06 TB")])
def test_format_bytes(n, text):
    assert validation.format_bytes(n) == text
