"""Upload size limit, enforced while the request body streams in: Django's own handlers would
first spool a 2 GB upload to disk. The handler stops reading the file at the limit and marks
the request, so the view answers with a clear message and nothing is kept."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


class SizeLimitHandler(FileUploadHandler):
    """Refuses a file of more than ``max_bytes`` (default: smaller than IMPORTS_MAX_BYTES)."""

    def __init__(self, request: HttpRequest, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.IMPORTS_MAX_BYTES - 1 if max_bytes is None else max_bytes

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.max_bytes:
            self.request.upload_too_big = True  # type: ignore[union-attr]
            # Read (and drop) the rest of the body so the client gets our answer.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def limit_uploads(request: HttpRequest, max_bytes: int | None = None) -> None:
    """Call before request.POST / request.FILES is first read."""
    request.upload_too_big = False  # type: ignore[attr-defined]
    request.upload_handlers.insert(0, SizeLimitHandler(request, max_bytes))


def too_big_message() -> str:
    from imports.reader import size_text

    limit = size_text(settings.IMPORTS_MAX_BYTES)
    return f"The file is too large; files must be smaller than {limit}."
