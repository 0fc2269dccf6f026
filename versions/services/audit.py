"""The audit trail: every audited write and every unredacted read of hazardous text records here."""

from versions.models import AuditEvent


def audit_record(*, project, actor, action, object_type, object_id, data=None):
    return AuditEvent.objects.create(
        project=project,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=data or {},
    )


def hazard_read_record(*, project, actor, object_type, object_id, data):
    """Record that ``actor`` read hazardous text unredacted (responses of an evaluation, rows of a
    dataset version). Every place that shows such text calls this, and only after deciding the
    reader may see it; the event is written in the request's transaction."""
    return audit_record(project=project, actor=actor, action="hazard.read", object_type=object_type, object_id=object_id, data=data)
