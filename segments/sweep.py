"""The scheduled sweep: rules that read the clock ("within the last 30 days", "was more
than 1 week ago", "tagged within 7 days") change their answer as time passes without any data
changing, so time-based segments are rebuilt (as diffs) on the SEGMENTS_SWEEP_CRON schedule, in
dependency order. The sweep also picks up segments whose build message was lost."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from segments.incremental import dependency_order
from segments.membership import segment_build, segment_failed
from segments.models import Segment

log = logging.getLogger(__name__)

# A segment waiting this long for its first build after an edit is built by the sweep.
LOST_BUILD_AFTER = timedelta(minutes=2)


def segments_sweep(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    due = Segment.objects.filter(
        Q(time_based=True)
        | (~Q(built_revision=F("revision")) & Q(updated_at__lt=now - LOST_BUILD_AFTER))
    ).only("id", "depends_on", "revision")
    entered = exited = built = failed = 0
    for segment in dependency_order(due):
        try:
            result = segment_build(segment.pk, now=now)
        except Exception as exc:
            # One segment that cannot be built (a statement timeout, rules that no longer
            # compile) must not keep every segment after it from being swept: it shows as
            # failed and is tried again on the next sweep.
            log.exception("sweep: segment %s failed to build", segment.pk)
            segment_failed(segment.pk, segment.revision, exc)
            failed += 1
            continue
        if result.status == "built":
            built += 1
            entered += len(result.changes.entered)
            exited += len(result.changes.exited)
    return {"built": built, "entered": entered, "exited": exited, "failed": failed}
