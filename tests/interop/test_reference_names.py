"""The reference implementations' names of the models' hyper-parameters
(``reference_names=`` of ``register_model``), which the RecBole adapter refuses naming
graphrec's: checked at registration, and declared for every name the model pages give
("MMRec `knn_k`" in a parameter table). No RecBole needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest

from graphrec.train.registry import Option, get_model, register_model, registered_models

REPO = Path(__file__).resolve().parents[2]


def _toy_builder(dataset: object, k: Annotated[int, Option(help="Neighbours.", min=1)] = 10) -> None:
    """A builder that is never called."""


@pytest.mark.parametrize("names, error", [
    ({"mmrec": {"knn_k": "kk"}}, r"stands for 'kk', which is not a hyper-parameter"),
    ({"mmrec": {"k": "k"}}, r"reference name 'k' of 'mmrec' must be an identifier that is not one of the model's own"),
    ({"mmrec": {"knn-k": "k"}}, r"reference name 'knn-k' of 'mmrec' must be an identifier"),
    ({"MMRec": {"knn_k": "k"}}, r"reference 'MMRec' must be lower-case"),
    ({"mmrec": {"knn_k": "modalities: {image: W}"}}, r"stands for 'modalities', which is not a hyper-parameter"),
])
def test_reference_names_are_checked_at_registration(names: dict, error: str) -> None:
    with pytest.raises(TypeError, match=error):
        register_model("toy-reference-names", title="Toy", paper="a test", summary="never built",
                       reference_names=names)(_toy_builder)
    with pytest.raises(Exception, match="unknown"):
        get_model("toy-reference-names")  # nothing was registered


def test_a_declared_name_and_its_value_form() -> None:
    entry = get_model("freedom")
    assert entry.reference_names["mmrec"]["knn_k"] == "k"
    assert entry.reference_names["mmrec"]["mm_image_weight"].startswith("modality_weights: ")
    assert get_model("mgcn").reference_names["mmrec"]["n_layers"] == "item_layers"
    assert get_model("lightgcn").reference_names["mmrec"]["n_layers"] == "num_layers"


def test_every_mmrec_name_in_a_model_page_is_declared() -> None:
    """A parameter-table row ``| `k` | ... (MMRec `knn_k`) |`` of docs/models/NAME.md says
    that MMRec's knn_k is graphrec's k: the builder declares it, so that the RecBole
    adapter refuses knn_k naming k (it used to ignore it silently)."""
    checked = 0
    for entry in registered_models("ranking"):
        page = REPO / "docs" / "models" / f"{entry.name}.md"
        if not page.is_file():
            continue
        own = {p.name for p in entry.params}
        declared = entry.reference_names.get("mmrec", {})
        for param, row in re.findall(r"^\| `(\w+)` \|(.*)$", page.read_text(), flags=re.M):
            if param not in own:
                continue
            for theirs in re.findall(r"MMRec `(\w+)`", row):
                if theirs == param:
                    continue
                assert declared.get(theirs, "").partition(":")[0] == param, (entry.name, theirs, param)
                checked += 1
    assert checked >= 10
