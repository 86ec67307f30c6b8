"""The demo root in a real TensorBoard, as headless Chromium shows it.

A module fixture builds a small demo root with the real CLI (train with every
callback, embed, a three-trial search) and serves it; each test opens one
dashboard and checks what the page shows. Screenshots go to the folder in
KERASJOBS_SCREENSHOTS (default: a temporary folder).

Chromium is Debian's /usr/bin/chromium, driven by Playwright's Python package
through `executable_path`; no browser is downloaded.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_kerasjobs
from tests.tbserver import serve

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)
# Flags that work as root in a container with no display, GPU or network.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
RUN = "demo-digits"
PROJECT = "demo-search"
THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
# Every text node under an element, shadow roots included (Polymer dashboards).
ALL_TEXT = """(root) => {
  const texts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text && !["STYLE", "SCRIPT"].includes(node.parentNode.nodeName)) {
        texts.push(text);
      }
    }
    if (node.shadowRoot) walk(node.shadowRoot);
    node.childNodes.forEach(walk);
  };
  walk(root);
  return texts;
}"""


def kerasjobs(*args: str) -> None:
    result = run_kerasjobs(*args, env=THREADS, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    """A trained run with a Projector export, and a finished search."""
    root = tmp_path_factory.mktemp("demo")
    kerasjobs(
        "train", "--root", str(root), "--run-name", RUN, "--epochs", "8",
        "--lr-schedule", "step", "--lr-step-epochs", "3", "--warmup-epochs", "1",
        "--histogram-freq", "1", "--progress", "line",
    )  # fmt: skip
    kerasjobs("embed", "--root", str(root), "--run", RUN)
    kerasjobs(
        "tune", "--root", str(root), "--project", PROJECT, "--max-trials", "3",
        "--epochs", "2", "--progress", "line",
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def board(demo_root):
    with serve(demo_root) as server:
        # The Projector reports itself disabled for a moment after start.
        server.wait_for(
            lambda: server.get_json("/data/plugins_listing"),
            lambda plugins: plugins.get("projector", {}).get("enabled"),
        )
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A persistent context on a fresh folder: a clean profile every run.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("KERASJOBS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def texts(locator) -> list[str]:
    return locator.evaluate(ALL_TEXT)


def open_dashboard(page, board, name: str) -> None:
    page.goto(f"{board.base_url}/#{name}")


def choose(menu, option: str) -> None:
    """Pick `option` in a Polymer paper-dropdown-menu once the menu offers it."""
    item = menu.locator("paper-item", has_text=re.compile(rf"^\s*{option}(\s|$)"))
    item.first.wait_for(state="attached")
    menu.click()
    item.locator("visible=true").first.click()


def test_scalars_page_charts_accuracy_and_learning_rate(page, board, screenshots):
    open_dashboard(page, board, "scalars")
    # Only this run's charts, unsmoothed, so the learning-rate steps show.
    page.locator("tf-runs-selector #names-regex input").fill(f"^{RUN}/")
    page.locator("tf-smoothing-input input").first.fill("0")

    for tag in ("epoch_accuracy", "epoch_learning_rate"):
        card = page.locator("tf-scalar-card").filter(has_text=tag)
        lines = card.locator("svg path.line")
        lines.first.wait_for()
        drawn = [
            d for d in lines.evaluate_all("ps => ps.map(p => p.getAttribute('d'))")
        ]
        # A line through several epochs: a move and at least one segment.
        assert any(d and d.count("L") >= 2 for d in drawn), (tag, drawn)
    runs = texts(page.locator("tf-runs-selector"))
    assert f"{RUN}/logs/train" in runs and f"{RUN}/logs/validation" in runs
    assert not any(run.startswith("tuning/") for run in runs)
    page.wait_for_timeout(1000)
    page.screenshot(path=screenshots / "scalars.png")


def test_graphs_page_renders_the_models_op_graph(page, board, screenshots):
    open_dashboard(page, board, "graphs")
    # The page opens the first tag as an op graph: kerasjobs tags its op graph
    # "graph" so that it sorts before the Keras callback's conceptual "keras".

    nodes = page.locator("tf-graph-scene g.node")
    nodes.first.wait_for()
    assert "Graph visualization failed" not in " ".join(texts(page.locator("body")))
    # The model is one namespace node (named after it, "mlp" here) ...
    model = page.locator("tf-graph-scene g.node.meta").filter(
        has=page.locator("text", has_text=re.compile("^mlp"))
    )
    # ... whose layers, named as in kerasjobs.models, show when it is opened.
    # The scene zooms into place after loading, so a double-click that lands
    # while it moves is tried again.
    layers = nodes.locator("text", has_text=re.compile("^flatten_"))
    for _ in range(10):
        box = model.first.bounding_box()
        page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(1000)
        if layers.count():
            break
    shown = nodes.locator("text").all_text_contents()
    for layer in ("flatten", "dense", "embedding", "classifier"):
        # A label is the node's shown (maybe cut) name, then its full name.
        named = re.compile(rf"^{layer}\S*{layer}_\d+$")
        assert any(named.match(label) for label in shown), (layer, shown)
    page.locator("tf-graph-controls").get_by_text("Fit to screen").click()
    page.wait_for_timeout(1500)
    page.screenshot(path=screenshots / "graphs.png")


def projector_frame(page):
    """The Projector runs in an iframe inside an iframe."""
    for _ in range(120):
        for frame in page.frames:
            if "projector_binary" in frame.url:
                return frame
        page.wait_for_timeout(500)
    raise TimeoutError("the Projector's frame never appeared")


def test_projector_loads_every_point_with_its_label(
    page, board, demo_root, screenshots
):
    export = demo_root / RUN / "logs" / "projector"
    record = json.loads((export / "embeddings.json").read_text())
    with open(export / "metadata.tsv", newline="") as stream:
        labels = Counter(row["label"] for row in csv.DictReader(stream, delimiter="\t"))
    points = sum(labels.values())

    open_dashboard(page, board, "projector")
    frame = projector_frame(page)
    # The counts read 0 until the vectors have loaded.
    status = frame.get_by_text(re.compile(rf"Points:\s*{points}\b")).first
    status.wait_for()
    header = " ".join(status.evaluate("e => e.parentElement.textContent").split())
    assert f"Points: {points} Dimension: {record['dimension']}" in header, header
    data = frame.locator("vz-projector-data-panel")
    choose(data.locator("paper-dropdown-menu").filter(has_text="Label by"), "label")
    choose(data.locator("paper-dropdown-menu").filter(has_text="Color by"), "label")

    # The colour legend counts the points of each label, as metadata.tsv does.
    legend = texts(data.locator("vz-projector-legend"))
    shown = dict(zip(legend[0::2], map(int, legend[1::2]), strict=True))
    assert shown == dict(labels)
    # Searching the label column finds exactly the points with that label.
    inspector = frame.locator("vz-projector-inspector-panel")
    choose(inspector.locator("paper-dropdown-menu").first, "label")
    inspector.locator("input").first.fill("3")
    frame.get_by_text(f"{labels['3']} matches.").wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=screenshots / "projector.png")


def test_hparams_page_lists_every_trial_with_its_values(
    page, board, demo_root, screenshots
):
    project = demo_root / "tuning" / PROJECT
    with open(project / "trials.csv", newline="") as stream:
        trials = list(csv.DictReader(stream))
    names = sorted(json.loads(trials[0]["hyperparameters"]))

    open_dashboard(page, board, "hparams")
    table = page.locator("tf-hparams-table-view")
    table.get_by_text("Trial ID").wait_for()
    page.wait_for_timeout(1000)
    shown = texts(table)
    for name in names:
        assert name in shown, (name, shown)
    # Each trial's row: its id, then its values in column order.
    for trial in trials:
        values = json.loads(trial["hyperparameters"])
        start = shown.index(trial["trial_id"], shown.index("Trial ID"))
        row = [float(cell) for cell in shown[start + 1 : start + 1 + len(names)]]
        assert row == pytest.approx([values[name] for name in names], rel=1e-4)
    page.screenshot(path=screenshots / "hparams.png")
