"""Segment writes: create, edit, duplicate, delete. Every rules change is validated, checked
for "in segment" cycles, bumps the revision and queues a background build."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from activity.services import Actor, activity_record
from segments.fields import ChangeKind, Registry
from segments.models import RULES_VERSION, Membership, Segment, SegmentStatus
from segments.rules import RuleError, RulesContext, RulesInvalid, rules_clean, rules_dependencies
from tags.models import Tag
from workbench.jobs import enqueue_on_commit

NAME_MAX = 200
GRAPH_LOCK_NAMESPACE = 5107  # pg_advisory_xact_lock: the "in segment" graph
DESCRIPTION_MAX = 2000


class SegmentInvalid(ValueError):
    """A name, description or time zone problem: ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SegmentNameTaken(SegmentInvalid):
    pass


class SegmentInUse(Exception):
    def __init__(self, users: list[Segment]) -> None:
        names = ", ".join(f"“{s.name}”" for s in users)
        super().__init__(f"Used by {names}; change or delete those first.")
        self.users = users


def rules_context(tz: str) -> RulesContext:
    return RulesContext(
        registry=Registry.load(),
        tz=zoneinfo.ZoneInfo(tz),
        tag_names={name.lower(): name for name in Tag.objects.values_list("name", flat=True)},
        segment_ids=set(Segment.objects.values_list("id", flat=True)),
    )


def _segment_refs(node: dict[str, Any], path: str = "root"):
    """Every "in segment" condition of a clean tree with its node path (as rules_clean names
    nodes), in order."""
    for i, child in enumerate(node["children"]):
        child_path = f"children[{i}]" if path == "root" else f"{path}.children[{i}]"
        if child["type"] == "group":
            yield from _segment_refs(child, child_path)
        elif child["type"] == "segment":
            yield child_path, child["segment"]


def _cycle_errors(segment_id: int | None, tree: dict[str, Any], refs: tuple[int, ...]) -> list:
    """An "in segment" condition whose segment leads back to this one, named by its node."""
    if segment_id is None or not refs:
        return []
    graph = dict(Segment.objects.values_list("id", "depends_on"))
    names = dict(Segment.objects.filter(pk__in=refs).values_list("id", "name"))
    errors = []
    for path, ref in _segment_refs(tree):
        seen, stack = set(), [ref]
        while stack:
            current = stack.pop()
            if current == segment_id:
                errors.append(
                    RuleError(
                        path,
                        f"Segment “{names.get(ref, ref)}” refers back to this segment (a cycle).",
                    )
                )
                break
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current) or [])
    return errors


def segment_rules_clean(raw: Any, tz: str, segment_id: int | None = None) -> dict[str, Any]:
    ctx = rules_context(tz)
    clean = rules_clean(raw, ctx, segment_id=segment_id)
    deps = rules_dependencies(clean, ctx.registry)
    errors = _cycle_errors(segment_id, clean, deps.segments)
    if errors:
        raise RulesInvalid(errors)
    return clean


def _name_clean(name: Any, exclude: int | None = None) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise SegmentInvalid("name", "A segment needs a name.")
    if len(name) > NAME_MAX:
        raise SegmentInvalid("name", f"A name has at most {NAME_MAX} characters.")
    taken = Segment.objects.filter(name__iexact=name)
    if exclude:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise SegmentNameTaken("name", f"A segment named “{name}” already exists.")
    return name


def _description_clean(description: Any) -> str:
    description = str(description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise SegmentInvalid("description", f"At most {DESCRIPTION_MAX} characters.")
    return description


def _timezone_clean(tz: Any, actor: Actor) -> str:
    tz = tz or (actor.member.timezone if actor.member else "") or "UTC"
    if tz not in zoneinfo.available_timezones():
        raise SegmentInvalid("timezone", f"“{tz}” is not an IANA time zone such as Europe/Paris.")
    return tz


def _apply_rules(segment: Segment, clean: dict[str, Any]) -> None:
    deps = rules_dependencies(clean, Registry.load())
    segment.rules = clean
    segment.rules_version = RULES_VERSION
    segment.change_kinds = deps.change_kinds
    segment.time_based = deps.time_based
    segment.depends_on = list(deps.segments)
    segment.status = SegmentStatus.COMPUTING
    segment.build_progress = 0


def _queue_build(segment: Segment) -> None:
    from segments.tasks import build_segment

    enqueue_on_commit(build_segment, segment.pk, segment.revision)
    _queue_indexes()


def _queue_indexes() -> None:
    from segments.tasks import ensure_segment_indexes

    enqueue_on_commit(ensure_segment_indexes)


def segment_create(
    *, name: Any, rules: Any, actor: Actor, description: Any = "", tz: str | None = None
) -> Segment:
    tz = _timezone_clean(tz, actor)
    segment = Segment(
        name=_name_clean(name),
        description=_description_clean(description),
        timezone=tz,
        created_by=actor.member,
        updated_by=actor.member,
    )
    clean = segment_rules_clean(rules, tz)
    with transaction.atomic():
        _apply_rules(segment, clean)
        _save(segment)
        activity_record(
            actor,
            "segment.created",
            target_type="segment",
            target_id=segment.pk,
            target_label=segment.name,
        )
        _queue_build(segment)
    return segment


def _save(segment: Segment, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            segment.save(**kwargs)
    except IntegrityError:  # a concurrent save took the name since _name_clean looked
        raise SegmentNameTaken(
            "name", f"A segment named “{segment.name}” already exists."
        ) from None


@dataclass
class SegmentChange:
    name: Any = None
    description: Any = None
    rules: Any = None
    timezone: str | None = None


def segment_update(*, segment: Segment, change: SegmentChange, actor: Actor) -> Segment:
    fields = []
    if change.name is not None:
        segment.name = _name_clean(change.name, exclude=segment.pk)
        fields.append("name")
    if change.description is not None:
        segment.description = _description_clean(change.description)
        fields.append("description")
    tz_changed = change.timezone is not None and change.timezone != segment.timezone
    if tz_changed:
        segment.timezone = _timezone_clean(change.timezone, actor)
        fields.append("timezone")
    rules_changed = change.rules is not None or tz_changed
    with transaction.atomic():
        if rules_changed:
            # Edits that could close a cycle check the graph one at a time: two racing edits
            # (A reads B, B reads A) would otherwise each pass against the other's old rules.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [GRAPH_LOCK_NAMESPACE])
            clean = segment_rules_clean(
                segment.rules if change.rules is None else change.rules,
                segment.timezone,
                segment.pk,
            )
            # The row lock orders this edit against a running build's revision check.
            locked = Segment.objects.select_for_update().get(pk=segment.pk)
            segment.revision = locked.revision + 1
            _apply_rules(segment, clean)
            fields.append("rules")
        segment.updated_at = timezone.now()
        segment.updated_by = actor.member
        # Only what this edit owns: the caller's copy may predate a build or an evaluation
        # that changed the member count and build state meanwhile.
        edited = ["name", "description", "timezone", "updated_at", "updated_by"]
        build_state = ["member_count", "built_revision", "built_at", "build_error"]
        rules_state = ["status", "build_progress"]  # set by _apply_rules
        if rules_changed:
            edited += ["rules", "rules_version", "change_kinds", "time_based", "depends_on"]
            edited += ["revision", *rules_state]
        else:
            build_state += rules_state
        _save(segment, update_fields=edited)
        segment.refresh_from_db(fields=build_state)
        activity_record(
            actor,
            "segment.updated",
            target_type="segment",
            target_id=segment.pk,
            target_label=segment.name,
            fields=fields,
        )
        if rules_changed:
            _queue_build(segment)
    return segment


def segment_duplicate(*, segment: Segment, actor: Actor) -> Segment:
    base = f"Copy of {segment.name}"
    name, n = base[:NAME_MAX], 1
    while Segment.objects.filter(name__iexact=name).exists():
        n += 1
        suffix = f" ({n})"
        name = base[: NAME_MAX - len(suffix)].rstrip() + suffix  # a long name keeps its suffix
    return segment_create(
        name=name,
        description=segment.description,
        rules=segment.rules,
        tz=segment.timezone,
        actor=actor,
    )


def segment_users(segment: Segment) -> list[Segment]:
    """Segments whose rules read this one."""
    return list(Segment.objects.filter(depends_on__contains=[segment.pk]).order_by("name"))


def segment_delete(*, segment: Segment, actor: Actor) -> None:
    """Delete a segment and its membership; refused while another segment reads it."""
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        users = segment_users(segment)
        if users:
            raise SegmentInUse(users)
        activity_record(
            actor,
            "segment.deleted",
            target_type="segment",
            target_id=segment.pk,
            target_label=segment.name,
        )
        # The row is locked (above) before the memberships go: a writer holding it (FOR KEY
        # SHARE) has committed, and none can start on this segment (models.Membership).
        Membership.objects.filter(segment_id=segment.pk).delete()
        segment.delete()
        _queue_indexes()  # indexes only these rules needed can go


def segments_tag_renamed(old: str, new: str) -> int:
    """Rules name tags; a renamed tag keeps its segments by rewriting the name in their rules
    (same tag, same members: nothing to rebuild). Returns how many segments changed."""

    def rename(node: dict[str, Any]) -> bool:
        if node["type"] == "group":
            return any([rename(child) for child in node["children"]])
        if node["type"] == "tag" and any(t.lower() == old.lower() for t in node["tags"]):
            node["tags"] = [new if t.lower() == old.lower() else t for t in node["tags"]]
            return True
        return False

    changed = 0
    for segment in Segment.objects.select_for_update().order_by("pk"):
        if segment.change_kinds & ChangeKind.TAGS and rename(segment.rules):
            segment.save(update_fields=["rules"])
            changed += 1
    return changed
