"""Analysis of any model: the hand-built heads are named, also among random distractor heads;
TransformerLens agrees on every shared score; folders load; bad input is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings

from constructions import induction, interop, transformer
from constructions.transformer import Config, Transformer
from tests import strategies as S
from verify import detectors
from verify.analysis import ablation, composition, load, report, scores

V, N = 10, 21


def _tl():
    return pytest.importorskip("transformer_lens", reason="TransformerLens is not installed "
                               "(pip install the 'peers' extra)")


def planted(n_heads: int, prev_at: int, ind_at: int, seed: int = 0) -> Transformer:
    """The hand-built induction model's two heads at head indices prev_at (layer 0) and ind_at
    (layer 1) among random distractor heads. Distractors read the whole residual stream but
    write only into extra dimensions that nothing else reads, so the circuit is intact while
    their attention patterns are arbitrary."""
    hb = induction.build_induction_model(V, N, "softmax")
    d0, e, extra = hb.cfg.d_model, hb.cfg.d_head, 8
    cfg = Config(n_layers=2, n_heads=n_heads, d_model=d0 + extra, d_head=e, d_vocab=V + 1,
                 n_ctx=N, d_vocab_out=V + 1)
    w = transformer.random_weights(cfg, seed=seed, scale=3.0, biases=False)
    src = hb.weights()
    w["embed.W_E"][:, :d0] = src["embed.W_E"]
    w["pos_embed.W_pos"][:, :d0] = src["pos_embed.W_pos"]
    w["unembed.W_U"] = torch.zeros(d0 + extra, V + 1, dtype=torch.float64)
    w["unembed.W_U"][:d0] = src["unembed.W_U"]
    for layer, at in ((0, prev_at), (1, ind_at)):
        a = f"blocks.{layer}.attn."
        w[a + "W_O"][:, :, :d0] = 0                  # distractors write only extra dimensions
        for name in ("W_Q", "W_K", "W_V"):
            w[a + name][at] = 0
            w[a + name][at, :d0] = src[a + name][0]
        w[a + "W_O"][at] = 0
        w[a + "W_O"][at, :, :d0] = src[a + "W_O"][0]
    return Transformer.from_weights(cfg, w)


def test_hand_built_heads_are_named_with_scores_near_one() -> None:
    model = load.load_model("induction")
    result = report.analyze(model)
    b = induction.mass_bounds(model.beta, model.cfg.n_ctx)
    prev, ind = result["named"]["previous_token"], result["named"]["induction"]
    assert (prev["best"]["layer"], prev["best"]["head"]) == (0, 0)
    assert (ind["best"]["layer"], ind["best"]["head"]) == (1, 0)
    assert prev["best"]["score"] >= 1 - b["delta_1"]
    assert ind["best"]["score"] >= 1 - b["delta_2"]
    assert prev["above_threshold"] == [[0, 0]] and ind["above_threshold"] == [[1, 0]]
    heads = {(h["layer"], h["head"]): h for h in result["heads"]}
    assert heads[(1, 0)]["copying"] == pytest.approx(1.0, abs=1e-12)
    assert heads[(0, 0)]["copying"] is None  # layer 0 writes nothing W_U reads
    for h in heads.values():  # removing either head of the circuit raises the loss
        assert h["ablation_loss_delta"]["zero"] > 0.5 and h["ablation_loss_delta"]["mean"] > 0.5
    k = result["composition"][0]
    assert k["k"] > result["composition_baseline"]["mean"] + 5 * result["composition_baseline"]["std"]
    assert set(result["heads"][0]) >= {"layer", "head", "previous_token", "duplicate_token",
                                       "induction", "copying", "ablation_loss_delta"}
    assert set(k) == {"from", "to", "q", "k", "v", "baseline"}
    assert "previous_token head: 0.0" in report.summary(result)


@settings(max_examples=8)
@given(S.distractor_layouts(n_heads=4), S.seeds)
def test_heads_found_among_random_distractors(layout, seed) -> None:
    n_heads, p, i = layout
    model = planted(n_heads, p, i, seed % 1000)
    result = report.analyze(model, ablations=False, n_seqs=8)
    prev, ind = result["named"]["previous_token"]["best"], result["named"]["induction"]["best"]
    hb = induction.build_induction_model(V, N, "softmax")
    b = induction.mass_bounds(hb.beta, N)  # the construction's proved bounds hold unchanged
    assert (prev["layer"], prev["head"]) == (0, p) and prev["score"] >= 1 - b["delta_1"]
    assert (ind["layer"], ind["head"]) == (1, i) and ind["score"] >= 1 - b["delta_2"]
    others = [h["induction"] for h in result["heads"] if (h["layer"], h["head"]) != (1, i)]
    assert max(others) < report.NAME_THRESHOLD
    comp = {(tuple(r["from"]), tuple(r["to"])): r["k"] for r in result["composition"]}
    assert max(comp, key=comp.get) == ((0, p), (1, i)) or comp[((0, p), (1, i))] > (
        result["composition_baseline"]["mean"])


# --- TransformerLens agrees ---------------------------------------------------------------

def _detect(ht, tokens: torch.Tensor, name: str) -> torch.Tensor:
    """TL's detect_head averaged over sequences (it takes strings; hand it our tokens)."""
    from transformer_lens.head_detector import detect_head

    out = []
    for seq in tokens:
        ht.to_tokens = lambda *_a, _s=seq, **_k: _s[None]
        out.append(detect_head(ht, "unused", name))
    return torch.stack(out).mean(0)


@pytest.mark.parametrize("which", ["hand-built", "planted"])
def test_transformer_lens_agrees_on_every_shared_score(which: str) -> None:
    _tl()
    model = load.load_model("induction") if which == "hand-built" else planted(3, 2, 1, seed=4)
    ht = interop.to_hooked_transformer(model)
    tokens = scores.probe_tokens(model.cfg, n_seqs=4)
    ours = scores.head_scores(model, tokens, normalization="transformer_lens")
    for kind, name in (("previous_token", "previous_token_head"),
                       ("duplicate_token", "duplicate_token_head"),
                       ("induction", "induction_head")):
        theirs = _detect(ht, tokens, name)
        for layer in range(model.cfg.n_layers):
            for h in range(model.cfg.n_heads):
                assert ours[layer][h][kind] == pytest.approx(float(theirs[layer, h]), abs=1e-12)
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            full = (ht.W_E @ ht.OV[layer, h] @ ht.W_U).AB.detach()
            theirs = None if float(full.abs().max()) == 0 else detectors.copying_score(full)
            if theirs is None:
                assert ours[layer][h]["copying"] is None
            else:
                assert ours[layer][h]["copying"] == pytest.approx(theirs, abs=1e-9)
    for kind in ("q", "k", "v"):
        tl_scores = ht.all_composition_scores(kind.upper())
        mine = composition.matrix(model, 0, 1, kind)
        assert torch.allclose(mine, tl_scores[0, :, 1, :], atol=1e-9, rtol=0)


def test_ablations_equal_transformer_lens_hooks() -> None:
    _tl()
    model = planted(3, 0, 2, seed=1)
    ht = interop.to_hooked_transformer(model)
    tokens = scores.probe_tokens(model.cfg, n_seqs=4)
    _, cache = ht.run_with_cache(tokens)
    for layer, h in ((0, 0), (1, 2), (1, 1)):
        mean_z = cache[f"blocks.{layer}.attn.hook_z"][:, :, h].mean(dim=(0, 1))

        def zero(z, hook, h=h):  # noqa: ANN001, ANN202
            z[:, :, h] = 0
            return z

        def mean(z, hook, h=h, m=mean_z):  # noqa: ANN001, ANN202
            z[:, :, h] = m
            return z

        for kind, fn in (("zero", zero), ("mean", mean)):
            theirs = ht.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", fn)])
            ours = ablation.ablate(model, layer, h, kind, tokens)(tokens)
            assert torch.allclose(ours, theirs, atol=1e-10, rtol=0)


# --- folders ------------------------------------------------------------------------------

def test_folder_round_trip_from_a_hooked_transformer(tmp_path) -> None:
    _tl()
    model = planted(2, 1, 0)
    ht = interop.to_hooked_transformer(model)
    load.save_folder(ht, tmp_path / "m")
    back = load.load_model(str(tmp_path / "m"))
    tokens = scores.probe_tokens(model.cfg, n_seqs=2)
    assert torch.equal(back(tokens), model(tokens))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["normalization_type"] is None


def test_folder_written_by_hand_in_a_few_lines(tmp_path) -> None:
    """README's recipe: config fields + state_dict, no helper from this project."""
    from safetensors.torch import save_file

    model = load.load_model("induction")
    (tmp_path / "config.json").write_text(json.dumps({
        "n_layers": 2, "d_model": model.cfg.d_model, "n_ctx": N, "d_head": model.cfg.d_head,
        "n_heads": 1, "d_vocab": V + 1, "attn_only": True, "normalization_type": None,
        "use_attn_scale": False, "dtype": "float64"}))
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    back = load.load_model(tmp_path)
    tokens = scores.probe_tokens(model.cfg, n_seqs=2)
    assert torch.equal(back(tokens), model(tokens))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verify", "analyze", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_json_on_a_folder_and_plot(tmp_path) -> None:
    load.save_folder(load.load_model("induction"), tmp_path / "m")
    r = run_cli(str(tmp_path / "m"), "--json", "--plot", str(tmp_path / "figs"), "--n-seqs", "4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["named"]["induction"]["best"]["layer"] == 1
    assert (tmp_path / "figs" / "analysis.png").stat().st_size > 10_000
    r = run_cli("induction", "--no-ablation", "--n-seqs", "2")
    assert r.returncode == 0 and "induction head: 1.0" in r.stdout


@pytest.mark.parametrize("setup, words", [
    ("missing", "not a folder"), ("no_weights", "no model.safetensors"),
    ("bad_json", "not valid JSON"), ("pickle", "not a safetensors file"),
    ("layernorm", "normalization_type"),
])
def test_cli_bad_folders_are_one_line(tmp_path, setup, words) -> None:
    folder = tmp_path / "m"
    if setup != "missing":
        load.save_folder(load.load_model("induction"), folder)
    if setup == "no_weights":
        (folder / "model.safetensors").unlink()
    elif setup == "bad_json":
        (folder / "config.json").write_text("{not json")
    elif setup == "pickle":
        torch.save({"x": torch.ones(2)}, folder / "model.safetensors")  # never unpickled
    elif setup == "layernorm":
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**cfg, "normalization_type": "LN"}))
    r = run_cli(str(folder))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["induction", "--n-seqs", "0"], "--n-seqs"), (["induction", "--seed", "-1"], "--seed"),
    (["induction", "--task", "ioi"], "--task"), (["induction", "--bos", "99"], "bos"),
])
def test_cli_bad_options(args, words) -> None:
    r = run_cli(*args)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1


def test_plot_path_checked_before_work(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    r = run_cli("induction", "--plot", str(tmp_path / "file"))
    assert r.returncode == 2 and "--plot" in r.stderr


# --- pieces -------------------------------------------------------------------------------

def test_composition_pieces() -> None:
    eye = torch.eye(3, dtype=torch.float64)
    assert composition.score(eye, eye) == pytest.approx(3 ** -0.5)
    assert composition.score(torch.zeros(3, 3), eye) == 0.0
    model = load.load_model("induction")
    with pytest.raises(ValueError, match="l1"):
        composition.pair(model, 1, 0, 0, 0, "k")
    with pytest.raises(ValueError, match="kind"):
        composition.pair(model, 0, 0, 1, 0, "x")
    with pytest.raises(ValueError, match="samples"):
        composition.baseline(8, 2, samples=1)
    a, b = composition.baseline(16, 4, seed=1), composition.baseline(16, 4, seed=1)
    assert a == b and 0 < a["mean"] < 1


def test_load_and_scores_bad_input() -> None:
    with pytest.raises(TypeError, match="model"):
        load.load_model(123)
    with pytest.raises(TypeError, match="Transformer"):
        scores.head_scores("x", torch.zeros(1, 3, dtype=torch.long))  # type: ignore[arg-type]
    tiny = Config(n_layers=1, n_heads=1, d_model=2, d_head=2, d_vocab=2, n_ctx=3)
    with pytest.raises(ValueError, match="n_ctx"):
        scores.probe_tokens(tiny)
    with pytest.raises(ValueError, match="task"):
        report.analyze(load.load_model("induction"), task="ioi")
    with pytest.raises(ValueError, match="kind"):
        ablation.ablate(load.load_model("induction"), 0, 0, "resample")
    with pytest.raises(ValueError, match="reference"):
        ablation.ablate(load.load_model("induction"), 0, 0, "mean")
    with pytest.raises(ValueError, match="half"):
        ablation.repeated_half_loss(load.load_model("induction"), torch.zeros(1, 4, dtype=torch.long))


def test_probe_bos_other_than_last_id() -> None:
    cfg = load.load_model("induction").cfg
    tokens = scores.probe_tokens(cfg, bos=3, n_seqs=5)
    assert bool((tokens[:, 0] == 3).all()) and not bool((tokens[:, 1:] == 3).any())
    assert int(tokens.max()) == cfg.d_vocab - 1 or int(tokens.max()) < cfg.d_vocab


@given(S.configs(max_layers=2, max_heads=3, max_width=6, max_vocab=7, attention="softmax"),
       S.seeds)
def test_factored_scores_equal_the_full_matrices(cfg, seed) -> None:
    """Composition from low-rank factors and copying from the d_head x d_head matrix equal the
    definitions on the full d_model x d_model / d_vocab x d_vocab matrices."""
    from constructions import circuits

    model = Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=seed % 1000))
    for l2 in range(1, cfg.n_layers):
        for h1 in range(cfg.n_heads):
            for h2 in range(cfg.n_heads):
                ov1, ov2, qk2 = circuits.ov(model, 0, h1), circuits.ov(model, l2, h2), \
                    circuits.qk(model, l2, h2)
                full = {"q": composition.score(ov1, qk2), "k": composition.score(qk2, ov1.T),
                        "v": composition.score(ov1, ov2)}
                for kind, value in full.items():
                    assert composition.pair(model, 0, h1, l2, h2, kind) == pytest.approx(
                        value, rel=1e-9, abs=1e-12)
    if cfg.d_vocab == cfg.vocab_out:
        for layer in range(cfg.n_layers):
            for h in range(cfg.n_heads):
                ours = scores.head_copying(model, layer, h)
                matrix = circuits.full_ov(model, layer, h)
                if ours is None:
                    with pytest.raises(ValueError):
                        detectors.copying_score(matrix)
                else:
                    assert ours == pytest.approx(detectors.copying_score(matrix), abs=1e-8)
