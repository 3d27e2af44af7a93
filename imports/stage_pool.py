"""Validating a big file's rows on several cores.

Checking a row is pure Python (phone numbers and e-mail addresses are most of it, ~50 µs a
row), so one process is the limit of a large import's first phase. Rows go in blocks to a pool
of processes that turn them into COPY text; the importing process reads the file and sends
the text to PostgreSQL meanwhile. Blocks come back in file order, and only a few are in flight,
so memory stays flat however large the file.

Processes are spawned (not forked: a Dramatiq worker has threads) and set up Django once; no
database connection is opened in them.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from customers.custom_fields import CustomFieldSpec

# This module is what a pool process unpickles before Django is set up, so nothing that
# touches models is imported at the top.

BLOCK_ROWS = 2000

_columns: list[Any] = []
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


def _setup(headers: list[str], mapping: list[str], specs: list[tuple[str, str, str]]) -> None:
    import django

    django.setup()
    from customers.custom_fields import CustomFieldSpec
    from imports.rows import columns_for

    global _columns
    _columns = columns_for(headers, mapping, {n: CustomFieldSpec(n, t, lbl) for n, t, lbl in specs})


def _type_block(import_id: int, width: int, rows: list) -> str:
    from imports.rows import BlockTyper

    global _typer
    if _typer is None:
        _typer = BlockTyper(import_id, width, _columns)
    return _typer.text(rows)


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
    *,
    processes: int,
) -> Iterator[tuple[Done, str]]:
    """(what a block covered, its COPY text) in file order; ``processes`` ≤ 1 types them in
    this process."""
    from imports.rows import BlockTyper, columns_for

    width = len(headers)
    if processes <= 1:
        typer = BlockTyper(import_id, width, columns_for(list(headers), list(mapping), specs))
        for block in blocks:
            yield block.done, typer.text(block.rows)
        return
    spec_list = [(s.name, s.type, s.label) for s in specs.values()]
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_setup,
        initargs=(list(headers), list(mapping), spec_list),
    ) as pool:
        pending: deque[tuple[Done, Future[str]]] = deque()
        for block in blocks:
            pending.append((block.done, pool.submit(_type_block, import_id, width, block.rows)))
            if len(pending) >= processes * 4:  # enough queued to cover a COPY and commit
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
