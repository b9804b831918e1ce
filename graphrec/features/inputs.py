"""Where an item's image and text come from: tables, image files, composed texts.

Pure functions over files and strings (no torch, no open_clip), used by
:func:`graphrec.features.extract.extract_item_features` and ``graphrec features``.

* :func:`read_item_table` reads a table keyed by item id from CSV (``.csv``, standard
  quoting), TSV (``.tsv``/``.tab``) or JSON lines (``.jsonl``/``.ndjson``, one object
  per line; a ``.json`` file holding one list of objects is read too). Every value
  becomes a string (lists are joined with ``", "``, ``null`` is ``""``).
* :func:`image_keys` / :func:`find_images` map each dataset item to an image file:
  by its own id (``IMAGE_DIR/<item_id>.<ext>``), or by a key column (a column of a
  mapping table such as MovieLens ``links.csv`` ``movieId -> tmdbId``, or an item field
  of the dataset). A key is a file name relative to the image folder, with or without
  its extension.
* :func:`compose_texts` joins an item's text fields (``title``, ``description``, ...)
  into the one string a text encoder sees.

An item without a key, without a file or with an empty text is *missing* that modality;
that is normal in catalogues and never an error here.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from graphrec.errors import ConfigError, DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ID_COLUMNS",
    "ItemTable",
    "read_item_table",
    "image_keys",
    "find_images",
    "compose_texts",
    "parse_fields",
]

#: image file extensions looked up for a key without one, in order of preference
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")

#: item id column names recognised when no id column is given (first match wins);
#: RecBole-style ``name:type`` headers match by their name
ID_COLUMNS: tuple[str, ...] = ("item_id", "itemId", "movieId", "asin", "parent_asin", "id", "item")

_TEXT_SEPARATOR = ". "


@dataclass(frozen=True)
class ItemTable:
    """A table keyed by item id, every value a string.

    Attributes:
        path: the file it was read from (for messages).
        id_column: the name of the item id column.
        columns: ``{name: values}``; ``columns[id_column]`` holds the ids.
        lines: the file line (1-based) of each row.
    """

    path: Path
    id_column: str
    columns: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def header(self) -> list[str]:
        return list(self.columns)

    def column_name(self, name: str) -> str:
        """The table's column called ``name`` (also ``name:type``); a DataError naming the
        header when there is none."""
        found = _match_column(self.header, name)
        if found is None:
            raise DataError(
                f"{self.path}: no column {name!r} (columns: {', '.join(self.header)}): "
                "name an existing column"
            )
        return found

    def lookup(self, column: str, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Values of ``column`` aligned to ``item_ids`` (``""`` for ids not in the table)."""
        col = self.columns[self.column_name(column)]
        index = {i: k for k, i in enumerate(self.columns[self.id_column])}
        out = [col[index[i]] if i in index else "" for i in np.asarray(item_ids).astype(str).tolist()]
        return np.array(out, dtype=object)


def _match_column(header: Sequence[str], name: str) -> str | None:
    if name in header:
        return name
    for h in header:
        if h.split(":", 1)[0] == name:
            return h
    return None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: file not found: check the path")
    try:
        return path.read_text(encoding="utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}): re-save the file as UTF-8") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value if _cell(v))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_delimited(path: Path, text: str, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as e:
        raise DataError(f"{path} line {reader.line_num}: malformed table ({e}): fix the quoting") from None
    if not rows:
        raise DataError(f"{path}: file is empty: write a header line and one row per item")
    header = [h.strip() for h in rows[0]]
    body, body_lines = rows[1:], lines[1:]
    for r, ln in zip(body, body_lines):
        if len(r) != len(header):
            what = "tab" if delimiter == "\t" else "comma"
            raise DataError(
                f"{path} line {ln}: expected {len(header)} {what}-separated fields "
                f"({', '.join(header)}), found {len(r)}: fix or remove the line"
            )
    return header, body, body_lines


def _read_json_objects(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    objects: list[tuple[int, Any]] = []
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {e.lineno}: invalid JSON ({e.msg}): fix the file") from None
        objects = [(k + 1, obj) for k, obj in enumerate(data)]
        where = "entry"
    else:
        for ln, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                objects.append((ln, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {ln}: invalid JSON ({e.msg}): one JSON object per line") from None
        where = "line"
    header: list[str] = []
    seen: set[str] = set()
    for ln, obj in objects:
        if not isinstance(obj, dict):
            raise DataError(f"{path} {where} {ln}: expected a JSON object, got {type(obj).__name__}: one object per item")
        for key in obj:
            if key not in seen:
                seen.add(key)
                header.append(key)
    rows = [[_cell(obj.get(h)) for h in header] for _, obj in objects]
    return header, rows, [ln for ln, _ in objects]


def read_item_table(path: str | os.PathLike, id_column: str | None = None) -> ItemTable:
    """Read a CSV, TSV or JSON-lines table with one row per item.

    Args:
        path: the file; the format follows the extension (``.csv``; ``.tsv``/``.tab``;
            ``.jsonl``/``.ndjson``/``.json``); any other extension is read as JSON lines
            when the file starts with ``{`` or ``[``, as TSV when its first line has a tab,
            else as CSV.
        id_column: the item id column; by default the first of :data:`ID_COLUMNS`
            present in the header.

    Raises:
        DataError: missing/empty/malformed file, no id column, an empty or repeated id.
    """
    path = Path(path)
    text = _read_text(path)
    ext = path.suffix.lower()
    first = text.lstrip()[:1]
    if ext in (".jsonl", ".ndjson", ".json") or (ext not in (".csv", ".tsv", ".tab") and first in ("{", "[")):
        header, rows, lines = _read_json_objects(path, text)
    elif ext in (".tsv", ".tab") or (ext != ".csv" and "\t" in text.split("\n", 1)[0]):
        header, rows, lines = _read_delimited(path, text, "\t")
    else:
        header, rows, lines = _read_delimited(path, text, ",")
    if not rows:
        raise DataError(f"{path}: no rows: add one row per item")
    if id_column is not None:
        id_col = _match_column(header, id_column)
        if id_col is None:
            raise DataError(
                f"{path}: no item id column {id_column!r} (columns: {', '.join(header)}): "
                "pass the name of the id column (--id-column)"
            )
    else:
        id_col = next((c for name in ID_COLUMNS if (c := _match_column(header, name)) is not None), None)
        if id_col is None:
            raise DataError(
                f"{path}: no item id column found (columns: {', '.join(header)}; looked for "
                f"{', '.join(ID_COLUMNS)}): name it with --id-column"
            )
    columns = {h: [r[k] for r in rows] for k, h in enumerate(header)}
    ids = [v.strip() for v in columns[id_col]]
    columns[id_col] = ids
    seen: dict[str, int] = {}
    for k, i in enumerate(ids):
        if not i:
            raise DataError(f"{path} line {lines[k]}: empty item id in column {id_col!r}: give every row its id")
        if i in seen:
            raise DataError(
                f"{path} line {lines[k]}: item id {i!r} already appears on line {lines[seen[i]]}: "
                "keep one row per item"
            )
        seen[i] = k
    return ItemTable(path=path, id_column=id_col, columns=columns, lines=lines)


def parse_fields(fields: str | Sequence[str]) -> tuple[str, ...]:
    """``"title,description"`` -> ``("title", "description")``; a ConfigError when empty."""
    parts = fields.split(",") if isinstance(fields, str) else list(fields)
    out = tuple(p.strip() for p in parts if p.strip())
    if not out:
        raise ConfigError("no text field given: name one or more columns, e.g. title,description")
    if len(out) != len(parts):
        shown = fields if isinstance(fields, str) else ",".join(map(str, fields))
        raise ConfigError(f"--text-fields {shown!r} has an empty field name: name the columns separated by "
                          "commas, e.g. title,description")
    if len(set(out)) != len(out):
        raise ConfigError(f"text fields {', '.join(out)}: list each field once")
    return out


def compose_texts(columns: Mapping[str, Sequence[str]], fields: Sequence[str]) -> list[str]:
    """Per item, the non-empty values of ``fields`` (in that order, whitespace collapsed)
    joined with ``". "``; ``""`` when the item has none of them (its text is missing).

    ``columns`` maps each field to the values aligned with the items.
    """
    cols = [columns[f] for f in fields]
    n = len(cols[0]) if cols else 0
    out = []
    for k in range(n):
        parts = [" ".join(str(c[k]).split()) for c in cols]
        out.append(_TEXT_SEPARATOR.join(p for p in parts if p))
    return out


def image_keys(
    item_ids: Sequence[str] | np.ndarray,
    key: str = "item_id",
    *,
    table: ItemTable | None = None,
    item_fields: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The image key of each item (``""`` when it has none).

    ``key="item_id"`` uses the item id itself. Any other value names a column: of
    ``table`` when given (a mapping file), else of the dataset's ``item_fields``.
    """
    ids = np.asarray(item_ids).astype(str)
    if key == "item_id" and table is None:
        return ids.astype(object)
    if table is not None:
        if key == "item_id":
            raise ConfigError(
                f"an image map ({table.path}) needs the column that names the image files: "
                f"pass --image-key COLUMN (columns: {', '.join(table.header)})"
            )
        values = table.lookup(key, ids)
    else:
        fields = dict(item_fields or {})
        if key not in fields:
            raise ConfigError(
                f"image key {key!r} is neither item_id nor an item field of the dataset "
                f"(fields: {', '.join(sorted(fields)) or 'none'}): pass --image-key item_id, a field, "
                "or a mapping file with --image-map FILE"
            )
        values = np.asarray(fields[key]).astype(str).astype(object)
    return np.array([_clean_key(v) for v in values], dtype=object)


def _clean_key(value: Any) -> str:
    v = str(value).strip()
    if v.lower() in ("", "nan", "none", "null"):
        return ""
    # integer keys written as floats by spreadsheet/pandas exports: "862.0" -> "862"
    if v.endswith(".0") and v[:-2].isdigit():
        return v[:-2]
    return v


def find_images(image_dir: str | os.PathLike, keys: Sequence[str] | np.ndarray) -> list[Path | None]:
    """The image file of each key in ``image_dir`` (``None`` when there is none).

    A key with an image extension (``.jpg``, ``.jpeg``, ``.png``, ``.webp``, any case) is a
    file name relative to ``image_dir``; a key without one is a file stem, looked up with
    each extension in :data:`IMAGE_EXTENSIONS` order (also upper case). The folder is
    listed once, so this costs one directory scan, not one ``stat`` per item.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found: pass the folder that holds the item images")
    by_stem: dict[str, tuple[int, str]] = {}
    names: set[str] = set()
    with os.scandir(root) as it:
        for entry in it:
            if not entry.is_file():
                continue
            names.add(entry.name)
            stem, ext = os.path.splitext(entry.name)
            rank = IMAGE_EXTENSIONS.index(ext.lower()) if ext.lower() in IMAGE_EXTENSIONS else -1
            if rank >= 0 and (stem not in by_stem or rank < by_stem[stem][0]):
                by_stem[stem] = (rank, entry.name)
    out: list[Path | None] = []
    for key in keys:
        key = str(key)
        if not key:
            out.append(None)
        elif os.path.splitext(key)[1].lower() in IMAGE_EXTENSIONS:
            if "/" in key or os.sep in key:
                out.append(root / key if (root / key).is_file() else None)
            else:
                out.append(root / key if key in names else None)
        elif "/" in key or os.sep in key:
            hit = next((root / f"{key}{e}" for e in IMAGE_EXTENSIONS if (root / f"{key}{e}").is_file()), None)
            out.append(hit)
        else:
            found = by_stem.get(key)
            out.append(root / found[1] if found else None)
    return out
