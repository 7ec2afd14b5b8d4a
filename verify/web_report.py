"""index.html: the certificate as one page a reader can browse offline.

The page holds the claims table (literal and restated outcomes, verdicts, links to proofs/),
the attention patterns of the hand-built induction models (and of a trained model folder when
one is given) as interactive circuitsvis views, the adder's margins and a grokking run's curves
as inline SVG charts drawn by a small script of our own, and the PNG figures with captions.
Everything is inlined: circuitsvis's bundled script (not its network copy), our script and
style, the data as JSON. Nothing is loaded from the network, so the page opens from disk.

A recorder at the top of the page collects script errors (window.onerror, unhandled
rejections, console.error) into ``<body data-errors>``; once loaded it sets ``data-views`` to
the number of attention views that rendered. The browser test reads both from the DOM.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import torch

from verify import registry, report_text
from verify.web_chart import CHART_JS

MARGIN_CAPTION = ("The trig-identity adder with every frequency 1..(p-1)/2: the smallest gap, over "
                  "all p^2 pairs, between the right answer's logit and the best other logit "
                  "(closed form and built network agree), and the lower bound 2 sin^2(pi/p) "
                  "that holds for any admissible frequency set K. Hover for values.")
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;font-size:14px}td,th{border:1px solid
#ccc;padding:3px 6px;vertical-align:top}th{background:#f3f3f3}.holds{color:#17692b}.fails{color:
#a33}.error{color:#a60;font-weight:bold}.v-confirmed{background:#e6f4ea}.v-corrected{background:
#fff4d6}.v-refuted{background:#fde7e7}.v-undetermined{background:#eee}figure{margin:1.5em 0}
figcaption{font-size:14px;color:#444}img{max-width:100%}.chart{border:1px solid #ddd}
.tip{position:absolute;background:#fff;border:1px solid #999;padding:2px 5px;font-size:12px;
pointer-events:none;display:none}code{font-size:13px}td:nth-child(2){min-width:260px}
td:first-child code{word-break:break-all}"""
RECORDER = """window.__errors=[];window.onerror=function(m,s,l){__errors.push(String(m)+' @'+l)};
window.addEventListener('unhandledrejection',function(e){__errors.push('rejection: '+e.reason)});
(function(){var e=console.error;console.error=function(){__errors.push(Array.prototype.join.call(
arguments,' '));return e.apply(console,arguments)}})();
window.addEventListener('load',function(){setTimeout(function(){var n=0;document.querySelectorAll(
'.cv-view').forEach(function(d){if(d.children.length)n++});document.body.dataset.views=n;
document.body.dataset.errors=JSON.stringify(__errors)},1500)});"""


def _json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, default=float).replace("</", "<\\/")


def circuitsvis_script() -> str:
    """circuitsvis's bundled browser build (defines the global ``CircuitsVis``), inlined."""
    import circuitsvis

    source = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    return source.read_text(encoding="utf-8").replace("</script", "<\\/script")


# --- what the page shows ------------------------------------------------------------------------

def attention_views(model_dir: Path | None = None) -> list[dict[str, Any]]:
    """[{title, caption, tokens, heads, attention [head, query, key]}] for the hand-built
    induction model on Demo 1's sequence and on the cat sentence, the one-layer induction model,
    and a trained model folder when given."""
    from constructions import induction

    views = []
    demo = [1, 2, 3, 4, 1, 2, 3, 4]
    model = induction.build_induction_model(5, len(demo) + 1)
    views.append(_view(model, [model.bos, *demo], ["BOS", *map(str, demo)],
                       "Induction model on Demo 1's sequence",
                       report_text.caption(Path("induction_demo1.png"))))
    words = "the cat sat on the mat . the cat".split()          # lower case, as in the PNG
    vocab = list(dict.fromkeys(words))
    cat = induction.build_induction_model(len(vocab), len(words) + 1)
    views.append(_view(cat, [cat.bos, *[vocab.index(w) for w in words]], ["BOS", *words],
                       "Induction model on the cat sentence",
                       report_text.caption(Path("induction_cat_sat.png"))))
    from constructions.one_layer_induction import build_one_layer_induction
    one = build_one_layer_induction(5, len(demo) + 1)
    views.append(_view(one, [5, *demo], ["BOS", *map(str, demo)],
                       "One-layer induction model (attention + MLP) on Demo 1's sequence",
                       "The counterexample to 'requires two attention layers' "
                       "(induction.two_layers_required): N hard-attention heads, head k attending "
                       "to position min(k, T) by position alone; the MLP does the matching. "
                       "Every head's pattern is a fixed column, whatever the tokens."))
    if model_dir is not None:
        trained, tokens = load_model_folder(model_dir)
        labels = ["BOS", *[str(t) for t in tokens[1:]]]
        views.append(_view(trained, tokens, labels,
                           f"Trained model {model_dir}: random tokens and their repeat",
                           "Every head of every layer of the model folder given with --model, "
                           "on random tokens repeated once: an induction head attends from "
                           "each token of the repeat to the token after its first occurrence."))
    return views


def _view(model: Any, tokens: list[int], labels: list[str], title: str, caption: str
          ) -> dict[str, Any]:
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([tokens]))
    heads, names = [], []
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]   # [head, query, key]
        for h in range(pattern.shape[0]):
            heads.append(pattern[h].to(torch.float64))
            names.append(f"L{layer}H{h}")
    attention = torch.stack(heads).round(decimals=6).tolist()
    return {"title": title, "caption": caption, "tokens": labels, "heads": names,
            "attention": attention}


def load_model_folder(folder: Path) -> tuple[Any, list[int]]:
    """A model folder (config.json in TransformerLens's field names + model.safetensors, as
    `python -m verify train-induction` writes it; read by `verify.analysis.load`) and a
    sequence for it: BOS (the last token id, as in `verify.formation.task`), then up to 16
    random tokens and their repeat. ValueError naming what is wrong."""
    from verify.analysis.load import load_folder

    try:
        model = load_folder(folder)
    except ValueError as error:
        raise ValueError(f"--model: {error}") from None
    cfg = model.cfg
    half = max(1, min(16, (cfg.n_ctx - 1) // 2))
    gen = torch.Generator().manual_seed(0)
    first = torch.randint(0, max(1, cfg.d_vocab - 1), (half,), generator=gen).tolist()
    return model, [cfg.d_vocab - 1, *first, *first]


def adder_margins(ps: range = range(2, 60)) -> dict[str, Any]:
    from verify.figures import adder_margin_curves
    return adder_margin_curves(list(ps))


# --- the page ---------------------------------------------------------------------------------

def render_html(results: list[registry.Result], env: dict[str, Any], figures: list[Path],
                directory: Path, views: list[dict[str, Any]], grok_run: dict[str, Any] | None,
                margins: dict[str, Any]) -> str:
    e = html.escape
    cert = env["certificate"]
    passed = sum(r.passed for r in results)
    rows = []
    for r in results:
        ex = report_text.proof_excerpt(r.id)
        link = report_text.proof_link(ex, directory)
        rows.append(
            f"<tr class='v-{e(r.verdict)}'><td><code>{e(r.id)}</code><br><small>{e(r.source)}"
            f"</small></td><td>{e(r.statement)}</td>{_cell(r.literal)}{_cell(r.restated)}"
            f"<td><b>{e(r.verdict)}</b></td><td>{e(str(r.recorded))}</td>"
            f"<td>{'yes' if r.passed else '<b>NO</b>'}</td><td>"
            + (f"<a href='{e(link)}'>{e(ex['file'])}</a>" if ex and link else "-")
            + "</td></tr>")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>circuit-proofs certificate</title>", f"<style>{CSS}</style>",
        f"<script>{RECORDER}</script></head><body>",
        "<h1>circuit-proofs: what the section's claims come to</h1>",
        f"<p>A certificate for {e(report_text.SECTION)}. Each claim has a <b>literal</b> check "
        "(the section's statement as it stands) and a <b>restated</b> one (the restatement "
        "proved in proofs/); the verdict follows from the two, and <i>passed</i> says it is "
        "the one proofs/ records. Evidence: <a href='report.json'>report.json</a>; the same "
        "text: <a href='REPORT.md'>REPORT.md</a>.</p>",
        f"<p>{len(results)} claims, {passed} passed, {len(results) - passed} failed. "
        f"circuit-proofs {e(str(cert['version']))}, {e(cert['source'])}; "
        f"{e(env['date_utc'])}; Python {e(env['python'])} on {e(env['platform'])}.</p>",
        "<h2 id='claims'>Claims</h2><table><tr><th>claim</th><th>the section says</th>"
        "<th>literal</th><th>restated</th><th>verdict</th><th>recorded</th><th>passed</th>"
        "<th>proof</th></tr>", *rows, "</table>",
        "<h2 id='attention'>Attention patterns</h2><p>Interactive (circuitsvis): choose a head; "
        "hover over a cell for its weight. Rows are query (destination) positions, columns "
        "key (source) positions.</p>"]
    for i, v in enumerate(views):
        parts += [f"<figure><h3>{e(v['title'])}</h3>",
                  f"<div id='cv-{i}' class='cv-view' style='min-height:200px'></div>",
                  f"<figcaption>{e(v['caption'])}</figcaption></figure>"]
    parts += ["<h2 id='adder'>The adder's margin</h2><figure><div id='chart-margin'></div>",
              f"<figcaption>{e(MARGIN_CAPTION)}</figcaption></figure>"]
    if grok_run is not None:
        parts += ["<h2 id='grokking'>Grokking curves</h2>",
                  "<figure><div id='chart-acc'></div><div id='chart-loss'></div>"
                  "<div id='chart-norm'></div>",
                  f"<figcaption>{e(report_text.caption(Path('grokking_curves.png')))}"
                  "</figcaption></figure>"]
    if figures:
        parts.append("<h2 id='figures'>Figures</h2>")
        for f in figures:
            parts += [f"<figure><img src='{e(f.relative_to(directory).as_posix())}' "
                      f"alt='{e(f.stem)}'><figcaption>{e(report_text.caption(f))}"
                      "</figcaption></figure>"]
    parts += ["<h2>Environment</h2><details><summary>versions, commit, machine</summary><pre>"
              f"{e(json.dumps(env, indent=2, default=str))}</pre></details>",
              f"<p>Cite the textbook section ({e(report_text.SECTION)}); CITATION.cff has this "
              "repository's metadata.</p><div class='tip' id='tip'></div>",
              f"<script>{circuitsvis_script()}</script>",
              f"<script>{CHART_JS}</script>",
              f"<script>{_render_calls(views, grok_run, margins)}</script></body></html>"]
    return "\n".join(parts)


def _cell(finding: registry.Finding | None) -> str:
    word = "error" if finding is None else ("holds" if finding.holds else "fails")
    return f"<td class='{word}'>{word}</td>"


def _render_calls(views: list[dict[str, Any]], grok_run: dict[str, Any] | None,
                  margins: dict[str, Any]) -> str:
    calls = []
    for i, v in enumerate(views):   # props as circuitsvis.attention.attention_heads passes them
        props = {"attention": v["attention"], "tokens": v["tokens"],
                 "attentionHeadNames": v["heads"], "maskUpperTri": True}
        calls.append(f"CircuitsVis.render('cv-{i}', CircuitsVis.AttentionHeads, {_json(props)});")
    m = margins
    calls.append("drawChart('chart-margin', " + _json({
        "x": m["p"], "xlabel": "p", "ylabel": "margin (log scale)", "log": True,
        "title": "margin: every frequency; lower bound: any admissible K",
        "series": [{"name": "closed form (Dirichlet)", "y": m["closed_form"]},
                   {"name": "built network, min over all pairs", "y": m["measured"],
                    "dots": True},
                   {"name": "lower bound, any admissible K", "y": m["bound"]}]})
        + ");")
    if grok_run is not None:
        h = grok_run["history"]
        step = h["step"]
        calls += [
            "drawChart('chart-acc', " + _json({"x": step, "xlabel": "step", "ylabel": "accuracy",
                "title": "accuracy", "series": [{"name": "train", "y": h["train_acc"]},
                                                {"name": "test", "y": h["test_acc"]}]}) + ");",
            "drawChart('chart-loss', " + _json({"x": step, "xlabel": "step", "log": True,
                "ylabel": "cross-entropy loss (log scale)", "title": "loss",
                "series": [{"name": k.replace("_", " "), "y": h[k]} for k in
                           ("train_loss", "test_loss", "restricted_loss", "excluded_loss")
                           if k in h]}) + ");",
            "drawChart('chart-norm', " + _json({"x": step, "xlabel": "step",
                "ylabel": "sum of squared weights", "title": "||W||^2",
                "series": [{"name": "||W||^2", "y": h["norm2"]}]}) + ");"]
    return "\n".join(calls)
