from __future__ import annotations

import dramatiq
from django.conf import settings

from customers import services
from customers.models import CustomField


@dramatiq.actor(queue_name=settings.QUEUE_LONG, max_retries=10, time_limit=3_600_000)
def purge_custom_field(field_id: int) -> None:
    """Remove a deleted custom field's values from every customer, then the field."""
    field = CustomField.objects.filter(pk=field_id, deleted_at__isnull=False).first()
    if field is None:  # already purged, or restored: nothing to do
        return
    services.custom_field_purge(field)
