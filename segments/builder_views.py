"""The segment builder (being written)."""

from django.http import Http404


def _pending(*args, **kwargs):
    raise Http404("Not built yet.")


segment_new = segment_edit = builder = _pending
