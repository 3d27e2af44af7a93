"""Upload size limit, enforced while the request body streams in: Django's own handlers would
first spool a 2 GB upload to disk. The handler stops reading the file at the limit and marks
the request, so the view answers with a clear message and nothing is kept."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest


class SizeLimitHandler(FileUploadHandler):
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) >= settings.IMPORTS_MAX_BYTES:
            self.request.upload_too_big = True  # type: ignore[union-attr]
            # Read (and drop) the rest of the body so the client gets our answer.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def limit_uploads(request: HttpRequest) -> None:
    """Call before request.POST / request.FILES is first read."""
    request.upload_too_big = False  # type: ignore[attr-defined]
    request.upload_handlers.insert(0, SizeLimitHandler(request))


def too_big_message() -> str:
    from imports.reader import size_text

    limit = size_text(settings.IMPORTS_MAX_BYTES)
    return f"The file is too large; files must be smaller than {limit}."
