"""The analysis of any model (verify/analysis: scores, composition, ablation, load), which the
trained-induction verdicts are made of, pinned so that a changed bound, constant, axis or
message fails a test (mutation testing, issue 13). Values are compared with their definitions
(detectors on the cached patterns, full matrices, forward passes) on tiny random models."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from constructions import circuits, induction, interop, transformer
from constructions.transformer import Config, Transformer
from verify import detectors
from verify.analysis import ablation, composition, load, scores


def _model(n_layers: int = 2, n_heads: int = 2, d_vocab: int = 7, n_ctx: int = 9, seed: int = 0,
           **extra) -> Transformer:
    cfg = Config(n_layers=n_layers, n_heads=n_heads, d_model=6, d_head=3, d_vocab=d_vocab,
                 n_ctx=n_ctx, **extra)
    return Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed))


# --- scores.py ------------------------------------------------------------------------------

def test_probe_tokens_shape_defaults_and_seed() -> None:
    cfg = _model().cfg                                             # d_vocab 7, n_ctx 9
    t = scores.probe_tokens(cfg)
    assert scores.PROBE_SEQS == 32 and t.shape == (32, 7)          # half = (9 - 2) // 2 = 3
    assert torch.equal(t, detectors.repeated_random_tokens(32, 3, 6, seed=0, bos=6))
    assert torch.equal(scores.probe_tokens(cfg, bos=6), t)
    assert torch.equal(scores.probe_tokens(cfg, seed=4, n_seqs=5),
                       detectors.repeated_random_tokens(5, 3, 6, seed=4, bos=6))
    assert scores.probe_tokens(_model(n_ctx=10).cfg).shape == (32, 9)   # half 4, below n_ctx


def test_probe_tokens_bounds() -> None:
    edge = Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=4)
    assert scores.probe_tokens(edge, n_seqs=3).tolist() == [[1, 0, 0]] * 3
    for cfg in (Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=3),
                Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=1, n_ctx=4)):
        with pytest.raises(ValueError, match=r"^the model needs d_vocab >= 2 and n_ctx >= 4 "
                                             r"for repeated random tokens"):
            scores.probe_tokens(cfg)
    cfg = _model().cfg
    for bad in (-1, 7):
        with pytest.raises(ValueError, match="^bos must be"):
            scores.probe_tokens(cfg, bos=bad)
    assert int(scores.probe_tokens(cfg, bos=0)[0, 0]) == 0


@pytest.mark.parametrize("bos", [0, 3, 5])
def test_probe_tokens_content_skips_bos(bos) -> None:
    cfg = _model().cfg
    t = scores.probe_tokens(cfg, bos=bos, n_seqs=64)
    ref = detectors.repeated_random_tokens(64, 3, 6, seed=0, bos=bos)
    content = ref[:, 1:]
    assert torch.equal(t[:, 1:], content + (content >= bos).long())
    assert bool((t[:, 0] == bos).all()) and not bool((t[:, 1:] == bos).any())
    assert set(t[:, 1:].unique().tolist()) == set(range(7)) - {bos}


def _direct_scores(model, tokens, normalization):
    _, cache = model.run_with_cache(tokens)
    n = tokens.shape[1]
    kinds = {"previous_token": detectors.previous_token_pattern(n),
             "duplicate_token": detectors.duplicate_token_pattern(tokens),
             "induction": detectors.induction_pattern(tokens)}
    return [[{k: float(detectors.pattern_score(cache[f"blocks.{layer}.attn.hook_pattern"][:, h],
                                               D, normalization=normalization).mean())
              for k, D in kinds.items()} for h in range(model.cfg.n_heads)]
            for layer in range(model.cfg.n_layers)]


@pytest.mark.parametrize("normalization", ["rows", "transformer_lens"])
def test_head_scores_are_the_detector_scores(normalization) -> None:
    model = _model(n_heads=3, seed=1)
    tokens = scores.probe_tokens(model.cfg, n_seqs=4)
    got = scores.head_scores(model, tokens, normalization=normalization)
    ref = _direct_scores(model, tokens, normalization)
    assert len(got) == 2 and all(len(row) == 3 for row in got)
    for layer in range(2):
        for h in range(3):
            assert set(got[layer][h]) == {"previous_token", "duplicate_token", "induction",
                                          "copying"}
            for k, v in ref[layer][h].items():
                assert got[layer][h][k] == pytest.approx(v, rel=1e-12, abs=1e-15), (layer, h, k)
            assert got[layer][h]["copying"] == scores.head_copying(model, layer, h)
    rows = scores.head_scores(model, tokens)
    tl = scores.head_scores(model, tokens, normalization="transformer_lens")
    assert rows[0][0]["induction"] != tl[0][0]["induction"]        # the two differ here
    assert all(s["copying"] is None for row in scores.head_scores(model, tokens, copying=False)
               for s in row)
    with pytest.raises(TypeError, match=r"^model must be a constructions.transformer.Transformer, "
                                        r"got object \(see verify.analysis.load\)$"):
        scores.head_scores(object(), tokens)  # type: ignore[arg-type]


def test_head_copying_values_and_undefined_cases() -> None:
    model = _model(seed=2)
    for layer in range(2):
        for h in range(2):
            assert scores.head_copying(model, layer, h) == pytest.approx(
                detectors.copying_score(circuits.full_ov(model, layer, h)), abs=1e-9)
    other = _model(d_vocab_out=5)
    assert scores.head_copying(other, 0, 0) is None
    w = model.weights()
    w["blocks.1.attn.W_O"][0] = 0
    zeroed = Transformer.from_weights(model.cfg, w)
    assert scores.head_copying(zeroed, 1, 0) is None
    assert scores.head_copying(zeroed, 1, 1) is not None
    with pytest.raises(ValueError, match="layer"):
        scores.head_copying(model, 2, 0)
    with pytest.raises(ValueError, match="head"):
        scores.head_copying(model, 0, 2)


def test_best_heads_order_and_missing_scores() -> None:
    table = [[{"k": 0.2}, {"k": None}], [{"k": 0.9}, {"k": -0.5}], [{"k": 0.5}, {"k": 0.2}]]
    assert scores.best_heads(table, "k") == [(1, 0, 0.9), (2, 0, 0.5), (0, 0, 0.2),
                                             (2, 1, 0.2), (1, 1, -0.5)]


# --- composition.py -------------------------------------------------------------------------

def test_composition_constants() -> None:
    assert composition.KINDS == ("q", "k", "v")
    assert composition.BASELINE_SAMPLES == 200 and composition.NORM_ZERO == 1e-30
    assert composition.baseline(3, 2)["samples"] == 200


def test_score_zero_norm_at_the_bound() -> None:
    one = torch.ones(1, 1, dtype=torch.float64)
    assert composition.score(one * 1e-30, one) == 1.0           # denominator == NORM_ZERO
    assert composition.score(one * 0.9e-30, one) == 0.0         # just below
    assert composition.score(one * 0.5, one * 4.0) == 1.0      # a large denominator
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    assert composition.score(a, b) == 0.0 and composition.score(a, a.T) == 1.0
    assert composition.score(torch.eye(2, dtype=torch.float64), b) == pytest.approx(2 ** -0.5)


def test_factored_score_bounds_and_values() -> None:
    one = torch.ones(1, 1, dtype=torch.float64)
    assert composition.factored_score(one * 1e-30, one, one, one) == 1.0   # sqrt(n1 n2) == 1e-30
    assert composition.factored_score(one * 0.9e-30, one, one, one) == 0.0
    assert composition.factored_score(one * 0.5, one, one, one * 3) == 1.0
    # the bound is on sqrt(n1 n2) = 2e-30 here (sqrt(n1 / n2) would be 0.5e-30)
    assert composition.factored_score(one * 1e-30, one, one, one * 2) == 1.0
    zero = torch.zeros(1, 1, dtype=torch.float64)
    assert composition.factored_score(zero, one, one, one) == 0.0
    assert composition.factored_score(one, one, one, zero) == 0.0
    # a zero head against one whose squared norm overflows (inf): 0, never 0 * inf = NaN
    assert composition.factored_score(zero, one, one * 1e200, one) == 0.0
    assert composition.factored_score(one * 1e200, one, zero, one) == 0.0
    gen = torch.Generator().manual_seed(0)
    a1, c1 = torch.randn(5, 2, generator=gen, dtype=torch.float64), \
        torch.randn(5, 2, generator=gen, dtype=torch.float64)
    b1, d1 = torch.randn(2, 5, generator=gen, dtype=torch.float64), \
        torch.randn(2, 5, generator=gen, dtype=torch.float64)
    full = composition.score(a1 @ b1, c1 @ d1)
    assert composition.factored_score(a1, b1, c1, d1) == pytest.approx(full, rel=1e-12)
    assert 0 < full < 1
    # orthogonal factors: a1 b1 != 0 but (a1 b1)(c1 d1) = 0, a rounded trace may fall below 0
    b2 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    c2 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    assert composition.factored_score(c2, b2, c2, b2) == 0.0


def test_factored_score_when_a_gram_trace_rounds_below_zero() -> None:
    """Factors whose product is zero though neither is (a = c w^T, b = w_perp z): the trace of
    the Gram product is a sum of cancelling terms that rounds below 0 here; the score is 0, not
    the complex square root of a negative number."""
    c = torch.tensor([[1.5409961082440433], [-0.2934289057609464], [-2.1787893820745574]],
                     dtype=torch.float64)
    w = torch.tensor([[0.5684312772806678], [-1.084522342424021]], dtype=torch.float64)
    z = torch.tensor([[-1.3985953953708767, 0.4033468476292993, 0.8380263329976598]],
                     dtype=torch.float64)
    a, b = c @ w.T, torch.stack([-w[1], w[0]]) @ z
    assert float(torch.trace((a.T @ a) @ (b @ b.T))) < 0.0
    one = torch.eye(3, 2, dtype=torch.float64)
    assert composition.factored_score(a, b, one, one.T) == 0.0
    assert composition.factored_score(one, one.T, a, b) == 0.0


def test_pair_layers_kinds_and_definitions() -> None:
    model = _model(n_layers=3, seed=5)
    for l1, l2 in ((1, 0), (0, 0), (-1, 1), (1, 3)):
        with pytest.raises(ValueError, match=r"0 <= l1 < l2 <= 2"):
            composition.pair(model, l1, 0, l2, 0, "k")
    with pytest.raises(ValueError, match="^kind must be one of"):
        composition.pair(model, 0, 0, 1, 0, "K")
    with pytest.raises(ValueError, match="head"):
        composition.pair(model, 0, 2, 1, 0, "k")
    for l1, l2 in ((0, 2), (1, 2), (0, 1)):
        ov1, ov2, qk2 = circuits.ov(model, l1, 1), circuits.ov(model, l2, 0), \
            circuits.qk(model, l2, 0)
        full = {"q": composition.score(ov1, qk2), "k": composition.score(qk2, ov1.T),
                "v": composition.score(ov1, ov2)}
        for kind, value in full.items():
            assert composition.pair(model, l1, 1, l2, 0, kind) == pytest.approx(value, rel=1e-10)
        assert len({round(v, 12) for v in full.values()}) == 3


def test_matrix_orientation_and_all_pairs() -> None:
    model = _model(n_layers=3, n_heads=2, seed=6)
    m = composition.matrix(model, 0, 2, "k")
    assert m.dtype == torch.float64 and m.shape == (2, 2)
    for h1 in range(2):
        for h2 in range(2):
            assert float(m[h1, h2]) == composition.pair(model, 0, h1, 2, h2, "k")
    assert float(m[0, 1]) != float(m[1, 0])
    rows = composition.all_pairs(model)
    assert len(rows) == 3 * 4
    assert [(r["from"][0], r["to"][0]) for r in rows[::4]] == [(0, 1), (0, 2), (1, 2)]
    for r in rows:
        (l1, h1), (l2, h2) = r["from"], r["to"]
        for kind in ("q", "k", "v"):
            assert r[kind] == pytest.approx(composition.pair(model, l1, h1, l2, h2, kind),
                                            rel=1e-12)
    assert composition.all_pairs(_model(n_layers=1)) == []


def test_baseline_is_the_random_factor_mean_and_std() -> None:
    gen = torch.Generator().manual_seed(3)
    found = []
    for _ in range(5):
        a = torch.randn(4, 2, generator=gen, dtype=torch.float64)
        b = torch.randn(2, 4, generator=gen, dtype=torch.float64)
        c = torch.randn(4, 2, generator=gen, dtype=torch.float64)
        f = torch.randn(2, 4, generator=gen, dtype=torch.float64)
        found.append(composition.factored_score(a, b, c, f))
    t = torch.tensor(found)
    base = composition.baseline(4, 2, samples=5, seed=3)
    assert base == {"mean": float(t.mean()), "std": float(t.std()), "samples": 5}
    assert composition.baseline(4, 2, samples=2)["samples"] == 2
    assert composition.baseline(4, 2, samples=5) == composition.baseline(4, 2, samples=5, seed=0)
    assert composition.baseline(1, 1, samples=2)["mean"] == pytest.approx(1.0)
    for kwargs, name in [({"d_model": 0, "d_head": 1}, "d_model"),
                         ({"d_model": 1, "d_head": 0}, "d_head"),
                         ({"d_model": 1, "d_head": 1, "samples": 1}, "samples")]:
        with pytest.raises(ValueError, match=f"^{name} must be"):
            composition.baseline(**kwargs)


# --- ablation.py ----------------------------------------------------------------------------

def test_ablate_arguments() -> None:
    model = _model()
    tokens = scores.probe_tokens(model.cfg, n_seqs=2)
    for layer, head, name in ((2, 0, "layer"), (-1, 0, "layer"), (0, 2, "head"), (0, -1, "head")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            ablation.ablate(model, layer, head)
    ablation.ablate(model, 1, 1)
    with pytest.raises(ValueError, match="^kind must be one of"):
        ablation.ablate(model, 0, 0, "Mean", tokens)
    with pytest.raises(ValueError, match=r"^reference tokens \(or mean_z\) are needed for "
                                         r"kind='mean'$"):
        ablation.ablate(model, 0, 0, "mean")
    ablation.ablate(model, 0, 0, "mean", mean_z=torch.zeros(3))


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_ablate_edits_one_head_of_a_frozen_copy(kind) -> None:
    model = _model(seed=7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = scores.probe_tokens(model.cfg, n_seqs=3)
    out = ablation.ablate(model, 1, 0, kind, tokens)
    assert out is not model and all(torch.equal(v, model.state_dict()[k])
                                    for k, v in before.items())
    assert not any(p.requires_grad for p in out.parameters())
    w, o = model.state_dict(), out.state_dict()
    assert bool((o["blocks.1.attn.W_O"][0] == 0).all())
    assert torch.equal(o["blocks.1.attn.W_O"][1], w["blocks.1.attn.W_O"][1])
    assert torch.equal(o["blocks.0.attn.W_O"], w["blocks.0.attn.W_O"])
    z = ablation.mean_head_outputs(model, tokens)[1][0]
    shift = z @ w["blocks.1.attn.W_O"][0] if kind == "mean" else torch.zeros(6)
    assert torch.allclose(o["blocks.1.attn.b_O"], w["blocks.1.attn.b_O"] + shift, atol=1e-12)
    assert torch.equal(o["blocks.0.attn.b_O"], w["blocks.0.attn.b_O"])
    if kind == "mean":
        given = ablation.ablate(model, 1, 0, "mean", mean_z=z).state_dict()
        assert all(torch.equal(given[k], o[k]) for k in o)
        # the head's output replaced by its mean: the same logits as the edited weights
        _, cache = model.run_with_cache(tokens)
        assert bool((z.abs() > 0).all())


def test_mean_head_outputs_are_cache_means() -> None:
    model = _model(n_heads=3, seed=8)
    tokens = scores.probe_tokens(model.cfg, n_seqs=4)
    _, cache = model.run_with_cache(tokens)
    means = ablation.mean_head_outputs(model, tokens)
    assert len(means) == 2 and all(len(row) == 3 for row in means)
    for layer in range(2):
        z = cache[f"blocks.{layer}.attn.hook_z"]                   # [batch, pos, head, d_head]
        for h in range(3):
            assert means[layer][h].shape == (3,)
            assert torch.allclose(means[layer][h], z[:, :, h].reshape(-1, 3).mean(0), atol=1e-14)
    assert not torch.allclose(means[0][0], means[0][1])


class _Logits:
    """A stand-in model: at position p the true next token has logit p, the others 0."""

    def __init__(self, tokens: torch.Tensor, d_vocab: int) -> None:
        b, n = tokens.shape
        self.logits = torch.zeros(b, n, d_vocab, dtype=torch.float64)
        for p in range(n - 1):
            self.logits[torch.arange(b), p, tokens[:, p + 1]] = float(p)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_repeated_half_loss_positions_and_lengths() -> None:
    for half in (2, 3):
        tokens = torch.tensor([[9, *range(half), *range(half)], [9, *range(1, half + 1),
                                                                  *range(1, half + 1)]])
        model = _Logits(tokens, 10)
        # positions half + 1 .. 2 half - 1: CE = log(e^p + 9) - p
        expected = sum(math.log(math.exp(p) + 9) - p for p in range(half + 1, 2 * half)) \
            / (half - 1)
        assert ablation.repeated_half_loss(model, tokens) == pytest.approx(expected, rel=1e-12)
    for n in (4, 6):
        with pytest.raises(ValueError, match=f"got length {n}"):
            ablation.repeated_half_loss(_Logits(torch.zeros(1, n, dtype=torch.long), 2),
                                        torch.zeros(1, n, dtype=torch.long))


def test_repeated_half_loss_of_a_real_model() -> None:
    model = _model(seed=9)
    tokens = scores.probe_tokens(model.cfg, n_seqs=3)          # length 7, half 3
    logits = model(tokens).double()
    expected = F.cross_entropy(logits[:, 4:6].reshape(-1, 7), tokens[:, 5:7].reshape(-1))
    assert ablation.repeated_half_loss(model, tokens) == pytest.approx(float(expected),
                                                                       rel=1e-12)


def test_loss_deltas_are_ablated_minus_clean() -> None:
    model = _model(seed=10)
    tokens = scores.probe_tokens(model.cfg, n_seqs=3)
    clean = ablation.repeated_half_loss(model, tokens)
    means = ablation.mean_head_outputs(model, tokens)
    deltas = ablation.loss_deltas(model, tokens)
    assert len(deltas) == 2 and all(len(row) == 2 for row in deltas)
    for layer in range(2):
        for h in range(2):
            assert list(deltas[layer][h]) == ["zero", "mean"]
            for kind in ("zero", "mean"):
                ablated = ablation.ablate(model, layer, h, kind, mean_z=means[layer][h])
                assert deltas[layer][h][kind] == pytest.approx(
                    ablation.repeated_half_loss(ablated, tokens) - clean, rel=1e-12, abs=1e-15)
            assert deltas[layer][h]["zero"] != deltas[layer][h]["mean"]


# --- load.py --------------------------------------------------------------------------------

def test_load_model_sources() -> None:
    model = _model()
    assert load.load_model(model) is model
    built = load.load_model("induction")
    assert (load.INDUCTION_VOCAB, load.INDUCTION_CTX, load.NAMED) == (10, 21, ("induction",))
    ref = induction.build_induction_model(10, 21, "softmax")
    assert built.cfg == ref.cfg
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in built.state_dict().items())
    with pytest.raises(TypeError, match=r"model folder or one of \('induction',\), got int"):
        load.load_model(3)


def test_load_model_from_a_tl_model_stand_in(monkeypatch) -> None:
    """The HookedTransformer branch, with a stand-in (importing TransformerLens takes a minute on
    a loaded machine; tests/test_analysis.py converts a real one)."""
    model = _model(seed=11)

    class HookedTransformer:
        cfg = object()

    class Other:
        cfg = object()

    seen = []
    monkeypatch.setattr(interop, "from_hooked_transformer", lambda ht: seen.append(ht) or model)
    ht = HookedTransformer()
    assert load.load_model(ht) is model and seen == [ht]
    with pytest.raises(TypeError, match="got Other"):
        load.load_model(Other())
    with pytest.raises(TypeError, match="got HookedTransformer"):
        load.load_model(type("HookedTransformer", (), {})())       # no cfg: not a model


def test_save_and_load_folder_round_trip(tmp_path) -> None:
    model = _model(seed=12)
    where = load.save_folder(model, tmp_path / "a" / "b")
    assert where == tmp_path / "a" / "b"
    assert (where / "config.json").read_text() == json.dumps(interop.config_to_tl(model.cfg),
                                                              indent=1)
    assert load.save_folder(model, where) == where                 # an existing folder is fine
    for source in (where, str(where)):
        back = load.load_model(source)
        assert interop.config_to_tl(back.cfg) == interop.config_to_tl(model.cfg)
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in back.state_dict().items())
    assert (load.CONFIG, load.WEIGHTS) == ("config.json", "model.safetensors")
    with pytest.raises(TypeError, match=r"^model must be a Transformer or a HookedTransformer$"):
        load.save_folder(str(where), tmp_path / "c")


def test_load_folder_refusals(tmp_path, monkeypatch) -> None:
    good = load.save_folder(_model(), tmp_path / "good")
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError, match=re.escape(
            f"PATH {missing!r} is not a folder (expected a folder with config.json and "
            f"model.safetensors, or one of induction)")):
        load.load_folder(missing)
    for name in ("config.json", "model.safetensors"):
        folder = tmp_path / f"no_{name}"
        folder.mkdir()
        other = "model.safetensors" if name == "config.json" else "config.json"
        (folder / other).write_bytes((good / other).read_bytes())
        with pytest.raises(ValueError, match=re.escape(f"PATH {str(folder)!r} has no {name}")):
            load.load_folder(folder)
    for text in (b"{not json", b"\xff\xfe{}"):
        bad = tmp_path / f"bad{len(text)}"
        bad.mkdir()
        (bad / "config.json").write_bytes(text)
        (bad / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
        with pytest.raises(ValueError, match="config.json' is not valid JSON"):
            load.load_folder(bad)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((good / "config.json").read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="model.safetensors' is not a safetensors file"):
        load.load_folder(broken)
    import safetensors.torch

    def odd(path):
        raise RuntimeError("something else")

    monkeypatch.setattr(safetensors.torch, "load_file", odd)
    with pytest.raises(ValueError, match=r"model.safetensors' could not be read \(RuntimeError\)"):
        load.load_folder(good)
