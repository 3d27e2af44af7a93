"""Validating a big file's rows on several cores.

Reading and checking rows is pure Python (~20 µs a row), so one process is the limit of a
large import's first phase. Pieces of the file go to a pool of processes that read them and
turn their rows into COPY text; the importing process cuts the file and sends the text to
PostgreSQL meanwhile. Results come back in file order, and only a few are in flight, so
memory stays flat however large the file.

Processes are spawned (not forked: a Dramatiq worker has threads) and set up Django once; no
database connection is opened in them.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from customers.custom_fields import CustomFieldSpec
    from imports.digest import RowDigests
    from imports.reader import Dialect, TextChunk

# This module is what a pool process unpickles before Django is set up, so nothing that
# touches models is imported at the top.

BLOCK_ROWS = 2000

_columns: list[Any] = []
_digests: Any = None
_typer: Any = None


@dataclass(frozen=True)
class Block:
    """Rows of the file: (row number, cells, problem) each."""

    rows: list[tuple[int, list[str], str]]

    @property
    def done(self) -> Done:
        return Done(len(self.rows), self.rows[-1][0])


@dataclass(frozen=True)
class Done:
    """What a typed block covered: how many rows, up to which row number. (The rows themselves
    are not kept once sent, so the blocks in flight cost only their COPY text.)"""

    count: int
    last: int


def _setup(
    headers: list[str],
    mapping: list[str],
    specs: list[tuple[str, str, str]],
    digest_key: bytes,
    known: bytes,
) -> None:
    import django

    django.setup()
    from customers.custom_fields import CustomFieldSpec
    from imports.digest import RowDigests
    from imports.rows import columns_for

    global _columns, _digests
    _columns = columns_for(headers, mapping, {n: CustomFieldSpec(n, t, lbl) for n, t, lbl in specs})
    _digests = RowDigests(digest_key, known)


def _typer_for(import_id: int, width: int) -> Any:
    from imports.rows import BlockTyper

    global _typer
    if _typer is None:
        _typer = BlockTyper(import_id, width, _columns, _digests)
    return _typer


def _type_block(import_id: int, width: int, rows: list) -> str:
    return _typer_for(import_id, width).text(rows)


def _type_chunk(
    import_id: int, width: int, chunk: TextChunk, dialect: Dialect, after: int
) -> tuple[Done, str] | None:
    """Read and type a piece of the file; None when it must be read in order instead."""
    from imports.reader import chunk_rows

    rows = chunk_rows(chunk, dialect)
    if rows is None:
        return None
    rows = [(r.number, r.cells, r.problem) for r in rows if r.number > after]
    return Done(len(rows), chunk.last), _typer_for(import_id, width).text(rows)


def blocks_of(
    rows: Iterable[tuple[int, list[str], str]], size: int = BLOCK_ROWS
) -> Iterator[Block]:
    batch: list[tuple[int, list[str], str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield Block(batch)
            batch = []
    if batch:
        yield Block(batch)


def typed_blocks(
    import_id: int,
    headers: Sequence[str],
    mapping: Sequence[str],
    specs: dict[str, CustomFieldSpec],
    blocks: Iterable[Block],
    digests: RowDigests | None = None,
) -> Iterator[tuple[Done, str]]:
    """(what a block covered, its COPY text) in file order, typed in this process."""
    from imports.rows import BlockTyper, columns_for

    columns = columns_for(list(headers), list(mapping), specs)
    typer = BlockTyper(import_id, len(headers), columns, digests)
    for block in blocks:
        yield block.done, typer.text(block.rows)


def _pool(
    headers: Sequence[str],
    mapping: Sequence[str],
    specs: dict[str, CustomFieldSpec],
    digests: RowDigests,
    size: int,
) -> ProcessPoolExecutor:
    spec_list = [(s.name, s.type, s.label) for s in specs.values()]
    known = digests.known.tobytes()
    return ProcessPoolExecutor(
        max_workers=size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_setup,
        initargs=(list(headers), list(mapping), spec_list, digests.key, known),
    )


def _in_order(
    jobs: Iterable[tuple[Any, Callable[[], Future]]], window: int
) -> Iterator[tuple[Any, Any]]:
    """(key, result) of each job in submission order, with ``window`` jobs in flight, so that
    memory stays flat. The caller may stop at any point; jobs not yet consumed are cancelled."""
    pending: deque[tuple[Any, Future]] = deque()
    try:
        for key, submit in jobs:
            pending.append((key, submit()))
            if len(pending) >= window:
                key, future = pending.popleft()
                yield key, future.result()
        while pending:
            key, future = pending.popleft()
            yield key, future.result()
    finally:
        for _, future in pending:
            future.cancel()


def typed_file(
    import_id: int,
    headers: Sequence[str],
    mapping: Sequence[str],
    specs: dict[str, CustomFieldSpec],
    path: Path,
    dialect: Dialect,
    *,
    after: int,
    processes: int,
    digests: RowDigests,
) -> Iterator[tuple[Done, str]]:
    """(what was covered, COPY text) for the file's rows after row ``after``, in file order,
    read and typed by ``processes`` processes: the file goes to them as pieces of text cut at
    record ends (imports/reader.py ``text_chunks``), so this process only decodes and cuts.
    From the first piece its reader finds cut wrongly (or that cannot be cut), the rest of the
    file is read in order here and typed in the pool a block at a time."""
    from imports.reader import Uncuttable, rows_read, text_chunks

    width = len(headers)
    window = processes * 4  # enough queued to cover a COPY and commit
    with _pool(headers, mapping, specs, digests, processes) as pool:
        chunks = (c for c in text_chunks(path, dialect) if c.last > after)
        jobs = (
            (c.first, lambda c=c: pool.submit(_type_chunk, import_id, width, c, dialect, after))
            for c in chunks
        )
        first_left = 1  # the first row not handed out yet
        try:
            for _, result in _in_order(jobs, window):
                if result is None:
                    break
                yield result
                first_left = result[0].last + 1
            else:
                return
        except Uncuttable:
            pass
        rows = (
            (row.number, row.cells, row.problem)
            for row in rows_read(path, dialect)
            if row.number >= first_left and row.number > after
        )
        blocks = (
            (block.done, lambda b=block: pool.submit(_type_block, import_id, width, b.rows))
            for block in blocks_of(rows)
        )
        yield from _in_order(blocks, window)
