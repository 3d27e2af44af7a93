from __future__ import annotations

from django.http import HttpResponse


def index(request):  # placeholder: replaced by the app's real list view
    return HttpResponse("Coming soon")
