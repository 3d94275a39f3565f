"""The chain's head, published to a write-once S3 bucket (Object Lock) by beat, and verify_audit checking the trail
against every head ever published: "rewritten" and "cut short" are different failures, and an empty trail after
events once existed is one. Against the sandbox's S3 over HTTP, through boto3."""

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from incidents import tasks
from incidents.models import AuditEvent
from incidents.selectors.audit import audit_head_key
from incidents.services.audit import audit_head_publish, audit_record
from tests.helpers import tamper


def relink_with_the_key(events: list[AuditEvent], previous_hash: str) -> None:
    """An insider who also holds the key re-links the trail from `events[0]` on, as it now reads: every link is
    sound again, and only a head published before can tell."""
    for event in events:
        event.refresh_from_db()
        content_hash = event.compute_content_hash()
        link = AuditEvent.chain_hash(previous_hash, content_hash, event.key_id)
        tamper(
            "UPDATE incidents_auditevent SET content_hash = %s, previous_hash = %s, hash = %s WHERE id = %s",
            [content_hash, previous_hash, link, event.pk],
        )
        previous_hash = link


@pytest.mark.django_db
def test_the_head_is_published_write_once(trail, heads_bucket, s3):
    published = audit_head_publish()
    assert published is not None and published.new
    assert (published.event_id, published.hash) == (trail[-1].pk, trail[-1].hash)
    assert published.key == audit_head_key(event_id=trail[-1].pk, event_hash=trail[-1].hash)

    stored = s3.head_object(Bucket=heads_bucket, Key=published.key)
    assert stored["ObjectLockMode"] == "COMPLIANCE"
    days = settings.PORTAL_AUDIT_HEADS_RETENTION_DAYS
    assert stored["ObjectLockRetainUntilDate"] > timezone.now() + timedelta(days=days - 1)
    version = stored["VersionId"]

    # Nobody can remove or replace it: deleting the version is refused, a plain delete only hides it behind a
    # marker, an overwrite only adds a newer version, and every version is still listed.
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=heads_bucket, Key=published.key, VersionId=version)
    s3.delete_object(Bucket=heads_bucket, Key=published.key)
    s3.put_object(Bucket=heads_bucket, Key=published.key, Body=b"{}")
    versions = s3.list_object_versions(Bucket=heads_bucket, Prefix="audit-heads/")["Versions"]
    assert version in {v["VersionId"] for v in versions}
    assert (
        b'"event_id": %d' % trail[-1].pk
        in s3.get_object(Bucket=heads_bucket, Key=published.key, VersionId=version)["Body"].read()
    )


@pytest.mark.django_db
def test_the_same_head_is_published_once_and_a_new_head_after_new_events(trail, heads_bucket, s3):
    assert audit_head_publish().new
    assert not audit_head_publish().new  # nothing new: the object already there is kept as it is
    audit_record(action="test.later")
    assert audit_head_publish().new
    keys = [v["Key"] for v in s3.list_object_versions(Bucket=heads_bucket, Prefix="audit-heads/")["Versions"]]
    assert len(keys) == 2


@pytest.mark.django_db
def test_beat_publishes_the_head_through_the_task(trail, heads_bucket, s3):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.publish_audit_head.name)
    assert entry["schedule"] == settings.PORTAL_AUDIT_HEAD_INTERVAL
    assert settings.CELERY_TASK_ROUTES[tasks.publish_audit_head.name] == {"queue": "default"}
    tasks.publish_audit_head.apply()
    key = audit_head_key(event_id=trail[-1].pk, event_hash=trail[-1].hash)
    assert s3.head_object(Bucket=heads_bucket, Key=key)["ObjectLockMode"] == "COMPLIANCE"


@pytest.mark.django_db
def test_a_publish_that_fails_is_left_to_the_next_run(trail, settings, caplog):
    settings.PORTAL_AUDIT_HEADS_BUCKET = "no-such-audit-heads-bucket"
    tasks.publish_audit_head.apply()
    assert "audit head not published: NoSuchBucket" in caplog.text


@pytest.mark.django_db
def test_the_trail_verifies_through_its_published_heads(trail, heads_bucket, capsys):
    audit_head_publish()
    audit_record(action="test.later")
    audit_head_publish()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"Audit trail intact: {len(trail) + 1} events verified" in out
    assert "It passes through 2 published heads." in out


@pytest.mark.django_db
def test_events_removed_from_the_end_after_a_head_was_published_are_cut_short(trail, heads_bucket):
    """Without the heads this trail still links up and used to verify as intact."""
    audit_head_publish()
    tamper("DELETE FROM incidents_auditevent WHERE id >= %s", [trail[-2].pk])
    expected = rf"cut short: the trail ends at event #{trail[-3].pk}, but a head was published at event #{trail[-1].pk}"
    with pytest.raises(CommandError, match=expected) as error:
        call_command("verify_audit")
    assert error.value.returncode == 3


@pytest.mark.django_db
def test_an_empty_trail_after_a_head_was_published_is_cut_short_not_intact(trail, heads_bucket):
    audit_head_publish()
    tamper("DELETE FROM incidents_auditevent")
    with pytest.raises(CommandError, match=r"cut short: the trail is empty, but a head was published") as error:
        call_command("verify_audit")
    assert error.value.returncode == 3


@pytest.mark.django_db
def test_a_published_event_rewritten_with_the_key_is_rewritten(trail, heads_bucket):
    audit_head_publish()
    tamper(
        "UPDATE incidents_auditevent SET details = %s WHERE id = %s", ['{"title": "Nothing happened"}', trail[-3].pk]
    )
    relink_with_the_key(trail[-3:], trail[-4].hash)
    with pytest.raises(
        CommandError, match=rf"rewritten at event #{trail[-1].pk}: it no longer matches the head"
    ) as error:
        call_command("verify_audit")
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_a_chain_that_no_longer_passes_through_a_published_head_is_rewritten(trail, heads_bucket):
    """An event removed and the chain re-linked around it, with the key, after a head was published at it."""
    published = audit_head_publish()
    later = audit_record(action="test.later")
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [published.event_id])
    relink_with_the_key([later], trail[-2].hash)
    expected = rf"rewritten at event #{published.event_id}: the chain no longer passes through the head published"
    with pytest.raises(CommandError, match=expected) as error:
        call_command("verify_audit")
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_heads_that_cannot_be_read_fail_the_check(trail, settings):
    settings.PORTAL_AUDIT_HEADS_BUCKET = "no-such-audit-heads-bucket"
    with pytest.raises(CommandError, match=r"not verified against its published heads: .* \(NoSuchBucket\)") as error:
        call_command("verify_audit")
    assert error.value.returncode == 4
