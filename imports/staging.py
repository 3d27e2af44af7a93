"""Each import's staged rows live in their own partition of imports_stagedrow (LIST on
import_id), made when staging starts and dropped when the import no longer needs them.

Deleting a million staged rows left them dead in one shared table until a vacuum came by, and
the next import scanned them all: an unchanged re-import right after an import spent 14 s of
its 40 s reading dead rows. A dropped partition leaves nothing behind, and queries that name
the import read only its own partition.

Autovacuum leaves a partition alone while its import runs: the import analyses it itself, a
vacuum of a million rows it is about to drop competed with the merge for the CPU, and a
dropping import waited a second (deadlock_timeout) for the vacuum to give way. A partition kept
for an error report gets autovacuum back (``staging_keep``), which reclaims its deleted rows.

A partition is UNLOGGED while its import runs: staged rows are a scratch copy of the file, and
writing them to the write-ahead log too (~520 MB for a million rows) cost ~0.5 s. A killed
worker loses nothing (the rows are in the table); a crash of the database server empties
unlogged tables, which ``staging_lost`` tells, and the import then stages the file again
(pipeline.import_run). A partition kept for an error report is made LOGGED first.

A partition is made empty and attached (SHARE UPDATE EXCLUSIVE on the parent: other imports'
rows go on being written meanwhile). Dropping one takes the parent's ACCESS EXCLUSIVE lock for
the rest of the caller's transaction, so callers drop last, just before they commit.
"""

from __future__ import annotations

from django.db import connection, transaction

PARENT = "imports_stagedrow"


def _name(import_id: int) -> str:
    return f"{PARENT}_{int(import_id)}"


def staging_exists(import_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [_name(import_id)])
        return cursor.fetchone()[0]


def staging_ensure(import_id: int) -> None:
    """The import's partition, made if it is missing."""
    if staging_exists(import_id):
        return
    name, key = _name(import_id), int(import_id)
    # One transaction: a partition that exists is attached (a killed worker leaves neither).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE UNLOGGED TABLE {name} (LIKE {PARENT} INCLUDING ALL)"
            " WITH (autovacuum_enabled = off)"
        )
        # A matching check lets ATTACH skip its own scan of the (empty) table.
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_key CHECK (import_id = {key})")
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES IN ({key})")
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_key")


def staging_drop(import_id: int) -> None:
    """Drop the import's staged rows, all of them."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_name(import_id)}")


def staging_keep(import_id: int) -> None:
    """The import's partition stays (for its error report): logged, so a server crash keeps
    it, and open to autovacuum, which reclaims its deleted rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE IF EXISTS {_name(import_id)} SET LOGGED, RESET (autovacuum_enabled)"
        )


def staging_lost(import_id: int) -> bool:
    """Whether the import's partition holds none of the rows it staged: missing, or emptied
    by a crash of the database server (an unlogged table's contents do not survive one)."""
    if not staging_exists(import_id):
        return True
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT NOT EXISTS (SELECT FROM {_name(import_id)})")  # noqa: S608
        return cursor.fetchone()[0]
