"""A cursor whose parameters travel apart from the SQL, in binary, for hot statements with big
array parameters.

Django's PostgreSQL backend binds on the client: every parameter is quoted into the SQL text.
For a list of 1,000 JSON documents or timestamps that quoting runs in Python, a few ms an
array, and the server parses the text back. Here psycopg sends the arrays in binary (``%b``
placeholders), and repeated statements are prepared once per connection.

It runs on Django's own connection, so it joins the caller's transaction; Django's query log
and ``execute_wrapper`` hooks do not see its statements. Errors are raised as Django's
(``django.db.IntegrityError`` ..., the psycopg error as ``__cause__``), as from Django's cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def bound_cursor() -> Iterator[psycopg.Cursor]:
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
