"""docs/workflow.md runs: every `graphrec` command of the page, parsed from its bash
blocks (and the files of its ``yaml file=NAME`` blocks), in order, on a tiny catalogue
in the page's MovieLens layout. Only the CLIP weights (no download: a small random CLIP)
and the number of trials are swapped, each swap checked to apply, so the page cannot
drift from the code."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DOC = Path(__file__).resolve().parents[2] / "docs" / "workflow.md"
STEPS = ("prepare", "features", "build-graph", "train", "tune", "evaluate", "recommend", "plot")
#: a CLIP small enough for CPU tests (as tests/features): 2 layers of width 32, 32 x 32 images
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
runner = CliRunner()


def doc_commands(text: str) -> list[str]:
    """The `graphrec ...` commands of the page's bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("graphrec "):
                commands.append(" ".join(line.split()))
    return commands


def doc_files(text: str) -> dict[str, str]:
    """The files the page asks to write: ```yaml file=NAME blocks."""
    return dict(re.findall(r"^```\w+ file=(\S+)\n(.*?)^```", text, re.S | re.M))


def test_the_page_covers_every_step_in_order():
    commands = doc_commands(DOC.read_text())
    steps = [shlex.split(c)[1] for c in commands]
    assert steps == list(STEPS)
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/workflow.md" in readme


def write_movielens(root: Path) -> dict[str, set[str]]:
    """A tiny MovieLens-layout folder: ratings (a few below 3.5), movies, links, posters
    (a coloured square per cluster, every 5th movie without one). Returns the ids."""
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=4, seed=4)
    from PIL import Image

    root.mkdir(parents=True)
    (root / "posters").mkdir()
    rng = np.random.default_rng(0)
    users, items = [], []
    for split in ("train", "valid", "test"):
        u, i = ds.pairs(split)
        users += list(u)
        items += list(i)
    with open(root / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        for n, (u, i) in enumerate(zip(users, items)):
            w.writerow([u + 1, 1000 + i, rng.choice([4.0, 4.5, 5.0]), 1_600_000_000 + n])
        w.writerow([1, 1000 + 39, 1.0, 1_700_000_000])  # a low rating: not an interaction
    clusters = np.argmax(ds.item_features["image"][:, :4], axis=1)
    genres = ["Drama", "Comedy", "Action|Thriller", "Animation|Children"]
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    with open(root / "movies.csv", "w", newline="") as f, open(root / "links.csv", "w", newline="") as g:
        movies, links = csv.writer(f), csv.writer(g)
        movies.writerow(["movieId", "title", "genres"])
        links.writerow(["movieId", "imdbId", "tmdbId"])
        for i in range(ds.n_items):
            movies.writerow([1000 + i, f"Movie {i}, part {i % 3} ({1990 + i})", genres[clusters[i]]])
            links.writerow([1000 + i, f"{110000 + i:07d}", 5000 + i])
            if i % 5:
                Image.new("RGB", (40, 40), colours[clusters[i]]).save(root / "posters" / f"{5000 + i}.jpg")
    return {"users": {str(u + 1) for u in users}, "items": {str(1000 + i) for i in items}}


def test_every_command_of_the_workflow_page_runs(tmp_path, monkeypatch):
    pytest.importorskip("open_clip", reason="the page's features step needs open_clip_torch + torchvision (the clip extra)")
    pytest.importorskip("optuna", reason="the page's tune step needs Optuna (the tune extra)")
    pytest.importorskip("matplotlib", reason="the page's plot step needs matplotlib (the plot extra)")
    text = DOC.read_text()
    monkeypatch.chdir(tmp_path)
    ids = write_movielens(tmp_path / "raw" / "movies")
    (tmp_path / "tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    swaps = {
        "--model ViT-B-32 --pretrained openai": f"--model {tmp_path / 'tiny-clip.json'} --pretrained none --device cpu",
        "--trials 30": "--trials 3",
    }
    for name, content in doc_files(text).items():
        (tmp_path / name).write_text(content)
    assert (tmp_path / "space.yaml").is_file()
    commands = doc_commands(text)
    for old in swaps:
        assert sum(old in c for c in commands) == 1, f"the page no longer has {old!r}: update the swaps"
    for command in commands:
        for old, new in swaps.items():
            command = command.replace(old, new)
        res = runner.invoke(app, shlex.split(command)[1:])
        assert res.exit_code == 0, f"{command}\n{res.output}"

    dataset = json.loads((tmp_path / "data" / "movies" / "dataset.json").read_text())
    assert set(dataset["modalities"]) == {"image", "text"}
    assert (tmp_path / "graphs" / "movies" / "knn" / "graph.json").is_file()
    best = json.loads((tmp_path / "runs" / "tune-mmgef" / "best" / "record.json").read_text())
    assert best["model"] == "mmgef" and best["test"] and best["model_params"]["item_layers"] == 1
    with open(tmp_path / "recs.csv", newline="") as f:
        recs = list(csv.DictReader(f))
    assert {r["user_id"] for r in recs} <= ids["users"] and {r["item_id"] for r in recs} <= ids["items"]
    assert len({r["user_id"] for r in recs}) == len(ids["users"])
    from matplotlib.image import imread

    for picture in (tmp_path / "curves.png", tmp_path / "runs" / "tune-mmgef" / "optimization_history.png"):
        assert imread(picture)[..., :3].std() > 0.05
