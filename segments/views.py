"""Segment pages (being written): list, detail, duplicate, delete, export, customer card."""

from django.http import Http404


def _pending(*args, **kwargs):
    raise Http404("Not built yet.")


segment_list = segment_detail = segment_duplicate = segment_delete = _pending
segment_export = customer_segments = customer_segment_explain = _pending
