"""Comma-separated files with a header and CSV quoting, read in chunks of records: the
reader of MovieLens' ``ratings.csv`` and side files, and of the plain interaction tables
(:mod:`graphrec.data.formats.table`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

import numpy as np

from graphrec.data.formats._common import (
    RowScan,
    Table,
    _Blocks,
    _Lines,
    _Stages,
    _block_lines,
    _line_count,
    check_separator,
    line_bounds,
    one_line,
    require_file,
)
from graphrec.errors import DataError

__all__ = ["CsvScan", "read_csv_table"]


class _CsvLines:
    """The lines of a CSV file's blocks (:class:`~graphrec.data.formats._common._Blocks`)
    with their line breaks, one at a time for :mod:`csv`'s reader, or the rest of a
    block at once (:meth:`take_block`); ``line``: the lines taken so far, which is the
    reader's ``line_num`` over the whole file."""

    def __init__(self, blocks: Iterator[tuple[str, bytes]]):
        self._blocks = blocks
        self._cur: io.StringIO | None = None  # the block being read line by line
        self._text, self._raw = "", b""
        self._first = True
        self.line = 0
        self.count = 0  # blocks started

    def _next_block(self) -> bool:
        block = next(self._blocks, None)
        if block is None:
            return False
        text, raw = block
        if self._first:  # the whole-file reader strips byte order marks from the start of the text
            self._first = False
            stripped = text.lstrip("\ufeff")
            raw = raw[3 * (len(text) - len(stripped)):]
            text = stripped
        self.resume(text, raw)
        self.count += 1
        return True

    def resume(self, text: str, raw: bytes) -> None:
        """Read ``text`` (with its bytes ``raw``) line by line next."""
        self._text, self._raw = text, raw
        self._cur = io.StringIO(text, newline="")

    def __iter__(self) -> "_CsvLines":
        return self

    def __next__(self) -> str:
        while True:
            if self._cur is not None:
                line = self._cur.readline()
                if line:
                    self.line += 1
                    return line
            if not self._next_block():
                raise StopIteration

    def take_block(self) -> tuple[str, bytes] | None:
        """The unread rest of the current block, else the next block; None at the end of
        the file. Its lines are not counted in ``line`` (the caller counts them)."""
        cur, self._cur = self._cur, None
        if cur is not None:
            pos = cur.tell()  # a character index (no newline translation)
            if pos < len(self._text):
                return self._text[pos:], self._raw[len(self._text[:pos].encode()):] if pos else self._raw
        if not self._next_block():
            return None
        self._cur = None
        return self._text, self._raw


class CsvScan(RowScan):
    """A comma-separated file with a header and CSV quoting, read in chunks of records
    (what :func:`read_csv_table` reads whole, with its errors and line numbers: see
    :class:`~graphrec.data.formats._common.TableScan`, whose interface it shares). The
    file's errors are raised in the order the whole-file reader finds them: a byte that
    is no UTF-8 anywhere, then malformed quoting anywhere, then the header, then the
    records' field counts.

    Records come from :mod:`csv`'s reader, except in the blocks of lines without a
    double quote (a ratings file): there a record is its line split at the commas (an
    empty line an empty record), which is what the reader makes of such lines, and a
    block whose every line has one field per column is split at once. The first block
    with a double quote and the rest of the file go through the reader (a quoted field
    may span lines, and blocks)."""

    def __init__(self, path: Path, names: tuple[str, ...], example: str, *, allow_empty: bool = False,
                 chunk_bytes: int | None = None, skip_blank: bool = False):
        require_file(path, "file")
        self.path = path
        self.allow_empty = allow_empty
        self.skip_blank = skip_blank  # empty lines after the header are no records (pandas' reading)
        self.errors = _Stages()
        self._src = _CsvLines(iter(_Blocks(path, chunk_bytes, os_errors=False)))
        self._reader = csv.reader(self._src)
        self._quoted = False  # whether the reader reads the rest of the file
        self.first = 2
        self._lines = _Lines(2)
        self._any_rows = False
        try:
            header = next(self._reader, None)
        except csv.Error as e:
            self._malformed(e)
            header = []
        if header is None:
            raise DataError(f"{path}: file is empty (no header line): write the header and the rows")
        self.header = header
        self.keys = header
        if self.errors.before(1):
            try:
                check_separator(path, header, ",", names,
                                f"{path.name} is read as CSV: separate its columns with commas (e.g. {example})")
            except DataError as e:
                self.errors.add(1, e)

    def _malformed(self, e: csv.Error) -> None:
        self.errors.add(0, DataError(
            f"{self.path} line {self._src.line}: malformed CSV ({one_line(e)}): fix the quoting"))
        self._quoted = True
        for _ in self._src:  # the rest is decoded all the same: a byte that is no UTF-8 comes first
            pass

    def chunks(self) -> Iterator[Table]:
        n = len(self.header)
        rows: list[list[str]] = []
        ends: list[int] = []
        empty: list[int] = []  # the lines of empty records not yet followed by a record: dropped at the end

        def add(record: list[str], end: int) -> None:
            nonlocal empty
            if not record:
                if not self.skip_blank:
                    empty.append(end)
                return
            for e_line in empty:
                rows.append([])
                ends.append(e_line)
            empty = []
            rows.append(record)
            ends.append(end)

        def flush() -> Table | None:
            nonlocal rows, ends
            table = self._table(rows, ends, n) if rows and self.errors.before(3) else None
            rows, ends = [], []
            return table

        while not self._quoted:
            block = self._src.take_block()
            if block is None:
                break
            text, raw = block
            if '"' in text:
                self._quoted = True
                self._src.resume(text, raw)
                break
            first = self._src.line + 1
            self._src.line += _line_count(text)
            if not self.errors.before(3):  # the header or a field count is wrong: only the text matters now
                continue
            cells = None if empty else self._fields(text, raw, n)
            if cells is not None:
                table = self._flat(cells, first, n)
                if table is not None:
                    yield table
                continue
            lines = _block_lines(text)
            if max(map(len, lines), default=0) > csv.field_size_limit():  # the reader's error, if any
                self._quoted = True
                self._src.resume(text, raw)
                self._src.line = first - 1
                break
            for k, ln in enumerate(lines):
                add(ln.split(",") if ln else [], first + k)
            table = flush()
            if table is not None:
                yield table
        if self._quoted:
            reader = self._reader
            block_no = self._src.count
            while True:
                start = self._src.line + 1  # a record's first line: a quoted field may span several
                try:
                    r = next(reader, None)
                except csv.Error as e:
                    self._malformed(e)
                    break
                if r is None:
                    break
                if not self.errors.before(3):  # only the quoting matters now
                    continue
                add(r, start)
                if self._src.count != block_no:
                    block_no = self._src.count
                    table = flush()
                    if table is not None:
                        yield table
        table = flush()
        if table is not None:
            yield table
        if not self._any_rows and not self.allow_empty:
            self.errors.add(2, DataError(f"{self.path}: no data rows after the header: the file is empty, add its rows"))
        self.errors.raise_first()

    def _fields(self, text: str, raw: bytes, n: int) -> list[str] | None:
        """The cells of a block without quotes, row by row, split at once: when every line
        has one field per column (counted in its bytes) and none is empty; else None."""
        if n < 2:
            return None
        b, starts, ends = line_bounds(raw)
        if (ends - starts).max() > csv.field_size_limit():
            return None
        commas = np.flatnonzero(b == 44)
        if len(commas) != (n - 1) * len(ends):
            return None
        if not (np.searchsorted(commas, ends) - np.searchsorted(commas, starts) == n - 1).all():
            return None
        cells = text.replace("\n", ",").split(",")
        if text.endswith("\n"):
            cells.pop()
        return cells

    def _flat(self, cells: list[str], first: int, n: int) -> Table:
        columns = {h: cells[j::n] for j, h in enumerate(self.header)}
        count = len(cells) // n
        self._any_rows = self._any_rows or bool(count)
        self._lines.add(first, count, None)
        return Table(self.path, self.header, columns, first, None)

    def _table(self, rows: list[list[str]], ends: list[int], n: int) -> Table | None:
        self._any_rows = True
        for k, r in enumerate(rows):
            if len(r) != n:
                self.errors.add(3, DataError(
                    f"{self.path} line {ends[k]}: expected {n} comma-separated fields ({', '.join(self.header)}), "
                    f"found {len(r)}: fix or remove the line"
                ))
                return None
        cols = list(zip(*rows)) if rows else [() for _ in self.header]
        self._lines.add(ends[0], len(rows), ends)
        return Table(self.path, self.header, {h: list(c) for h, c in zip(self.header, cols)}, 2, ends)



def read_csv_table(path: Path, names: tuple[str, ...], example: str, *, allow_empty: bool = False) -> Table:
    """A comma-separated file with a header and CSV quoting, as a :class:`Table`.

    ``names``: column names of which the header holds at least one; a header that holds
    none, but does when split on a tab, semicolon, pipe or space, is a file written with
    that separator, refused in one line that says so (``example``: a header to copy)."""
    return CsvScan(path, names, example, allow_empty=allow_empty).read_all()
