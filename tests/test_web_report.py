"""index.html: self-contained (no network), and in a real browser (headless Chromium) it loads
from disk with no script errors and the attention views render (a screenshot is not blank)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from constructions import transformer
from verify import registry, report, web_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
VIRTUAL_TIME_MS = "10000"      # lets the page's load handler (1.5 s timer) run
BLUE_PIXELS = 5000             # the circuitsvis heatmaps are saturated blue; text links are few


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def small_run() -> dict:
    steps = [0, 10, 20, 30]
    return {"history": {"step": steps, "train_acc": [0.1, 0.6, 1.0, 1.0],
                        "test_acc": [0.0, 0.1, 0.5, 0.99], "train_loss": [4.0, 1.0, 0.1, 0.01],
                        "test_loss": [4.0, 3.0, 1.0, 0.05], "norm2": [9.0, 12.0, 8.0, 6.0],
                        "restricted_loss": [4.0, 2.0, 0.5, 0.04],
                        "excluded_loss": [4.0, 4.1, 4.5, 5.0]}}


def page(tmp_path: Path, *, model_dir: Path | None = None) -> Path:
    results = [registry.Result("demo_2.param_count", "Coding Demo 2", "a statement", "confirmed",
                               True, {}, 0.1, registry.Finding(True), registry.Finding(True),
                               "confirmed"),
               registry.Result("x.broken", "nowhere", "s", registry.UNDETERMINED, False,
                               {"error": "boom"}, 0.1, None, registry.Finding(False), None)]
    html = web_report.render_html(results, report.environment(), [], tmp_path,
                                  web_report.attention_views(model_dir), small_run(),
                                  web_report.adder_margins(range(2, 9)))
    path = tmp_path / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_page_is_self_contained(tmp_path):
    html = page(tmp_path).read_text()
    assert "var CircuitsVis=" in html                  # the bundled script, inlined
    assert "unpkg.com" not in html and "<link" not in html
    for attr in re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", html):
        assert not re.match(r"(https?:)?//", attr), attr
    assert html.count("class='cv-view'") == 3
    assert "Mechanistic Interpretability and Circuit Analysis" in html
    assert "<td class='error'>error</td>" in html and "<td class='holds'>holds</td>" in html
    assert "href='../" not in html or "proofs/grokking.md#demo_2param_count" in html


def test_a_trained_model_folder_adds_a_view(tmp_path):
    from verify.analysis.load import save_folder

    cfg = transformer.Config(n_layers=2, n_heads=2, d_model=8, d_head=4, d_vocab=10, n_ctx=12)
    model = transformer.Transformer.from_weights(cfg, transformer.random_weights(cfg, seed=0))
    folder = save_folder(model, tmp_path / "model")
    loaded, tokens = web_report.load_model_folder(folder)
    assert len(tokens) == 11 and tokens[0] == 9 and tokens[1:6] == tokens[6:]
    assert torch.equal(loaded(torch.tensor([tokens])), model(torch.tensor([tokens])))
    views = web_report.attention_views(folder)
    assert len(views) == 4 and views[3]["heads"] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    assert views[3]["tokens"][0] == "BOS"
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="--model: .*not valid JSON"):
        web_report.load_model_folder(folder)


@pytest.fixture(scope="module")
def browser() -> str:
    path = chromium()
    if path is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's `chromium` with "
                    "apt-get; it could not here)")
    return path


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={VIRTUAL_TIME_MS}", *args],
                              capture_output=True, text=True, timeout=180)


def test_page_loads_in_chromium_without_errors(browser, tmp_path):
    index = page(tmp_path)
    result = _chromium(browser, "--dump-dom", index.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body, result.stdout[:500]
    views = re.search(r'data-views="(\d+)"', body.group(1))
    errors = re.search(r'data-errors="([^"]*)"', body.group(1))
    assert views and errors, body.group(1)
    assert json.loads(errors.group(1).replace("&quot;", '"')) == []
    assert int(views.group(1)) == 3                   # every attention view rendered
    assert "<svg" in result.stdout                    # the charts were drawn
    assert "Uncaught" not in result.stderr


def test_attention_view_screenshot_is_not_blank(browser, tmp_path):
    import matplotlib.image

    index = page(tmp_path)
    shot = tmp_path / "shot.png"
    result = _chromium(browser, "--window-size=1100,2400", f"--screenshot={shot}",
                       index.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    blue = (pixels[..., 2] > 0.8) & (pixels[..., 0] < 0.3) & (pixels[..., 1] < 0.3)
    assert int(blue.sum()) > BLUE_PIXELS


def test_the_recorder_catches_a_script_error(browser, tmp_path):
    """The error check can fail: a page with a broken script reports it in data-errors."""
    index = page(tmp_path)
    index.write_text(index.read_text().replace("</body>",
                                               "<script>undefinedFunction()</script></body>"))
    result = _chromium(browser, "--dump-dom", index.as_uri())
    assert "undefinedFunction is not defined" in result.stdout


def test_views_show_the_circuits():
    demo, cat, one = web_report.attention_views()
    induction_head = torch.tensor(demo["attention"][1])      # block 1 on BOS 1 2 3 4 1 2 3 4
    assert demo["heads"] == ["L0H0", "L1H0"]
    assert int(induction_head[5].argmax()) == 2               # the second 1 looks at the first 2
    previous = torch.tensor(demo["attention"][0])
    assert [int(previous[i].argmax()) for i in range(1, 9)] == list(range(8))
    at_second_cat = torch.tensor(cat["attention"][1])[-1]
    assert cat["tokens"][int(at_second_cat.argmax())] == "sat"
    assert len(one["heads"]) == 9 and one["heads"][0] == "L0H0"
