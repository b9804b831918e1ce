"""graphs/README.md's recipe key table lists every key `graphrec build-graph` accepts in a
recipe (RECIPE_KEYS, and SOURCE_KEYS under `source`), no other, with the code's defaults."""

from __future__ import annotations

import re
from pathlib import Path

from graphrec.cli.build_graph import DEFAULTS, RECIPE_KEYS
from graphrec.cli.sources import SOURCE_KEYS

README = Path(__file__).resolve().parents[2] / "graphs" / "README.md"


def _rows() -> dict[str, str]:
    """key -> default cell of the table's rows (a row may name several keys)."""
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([a-z_.]+)`", cells[0]):
                rows[key] = cells[2]
    return rows


def test_the_table_names_every_recipe_key():
    rows = _rows()
    assert {key.split(".")[0] for key in rows} == RECIPE_KEYS
    assert {key.split(".", 1)[1] for key in rows if key.startswith("source.")} == SOURCE_KEYS


def test_the_table_gives_the_code_defaults():
    rows = _rows()
    for key, value in DEFAULTS.items():
        if value is None and key in ("modalities", "out"):  # "all", "graphs/<dataset name>"
            continue
        if isinstance(value, bool) or value is None:
            shown = {None: "null", False: "false", True: "true"}[value]
        else:
            shown = str(int(value) if isinstance(value, float) and value.is_integer() else value)
        assert rows[key].replace("`", "").startswith(shown), (key, rows[key], value)
