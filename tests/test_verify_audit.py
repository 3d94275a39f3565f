"""`manage.py verify_audit` walks the keyed chain: 0 with a summary when intact, 1 naming the first event that was
rewritten, forged or re-linked without the key, 3 when the trail was cut short."""

import hashlib
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from incidents.models import AuditEvent
from incidents.services.audit import audit_record
from incidents.services.declarations import declaration_create
from tests.helpers import tamper


@pytest.mark.django_db
def test_an_intact_trail_verifies_with_a_summary(trail, capsys):
    call_command("verify_audit", chunk_size=2)  # several chunks
    out = capsys.readouterr().out
    assert f"Audit trail intact: {len(trail)} events verified, #{trail[0].pk} to #{trail[-1].pk}" in out
    assert trail[-1].hash in out


@pytest.mark.django_db
def test_an_edited_event_is_named(trail):
    victim = trail[-3]
    tamper("UPDATE incidents_auditevent SET details = %s WHERE id = %s", ['{"title": "innocent"}', victim.pk])
    with pytest.raises(CommandError, match=rf"rewritten at event #{victim.pk}: its content does not match") as error:
        call_command("verify_audit", chunk_size=2)
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_a_deleted_event_breaks_the_link_of_the_next_one(trail):
    victim, successor = trail[-3], trail[-2]
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=rf"rewritten at event #{successor.pk}: its previous_hash .* was removed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_a_rewritten_hash_is_named(trail):
    victim = trail[-2]
    tamper("UPDATE incidents_auditevent SET hash = %s WHERE id = %s", ["f" * 64, victim.pk])
    with pytest.raises(CommandError, match=rf"rewritten at event #{victim.pk}: its hash does not follow"):
        call_command("verify_audit")


def forge(*, previous_hash: str, key_id: str, link, **fields) -> AuditEvent:
    """An event as someone who may INSERT into the table writes it: any content, linked as best they can."""
    event = AuditEvent(
        actor_label="mallory",
        action="user.roles_changed",
        details={"roles": ["admins"]},
        created_at=timezone.now(),
        previous_hash=previous_hash,
        key_id=key_id,
        **fields,
    )
    event.content_hash = event.compute_content_hash()
    event.hash = link(previous_hash, event.content_hash)
    event.save(force_insert=True)
    return event


def sha256_link(previous_hash: str, content_hash: str) -> str:
    """The link as migration 0006's trigger computed it: anyone can."""
    return hashlib.sha256((previous_hash + content_hash).encode()).hexdigest()


def keyed_link(previous_hash: str, content_hash: str) -> str:
    return AuditEvent.chain_hash(previous_hash, content_hash, AuditEvent.signing_key_id())


@pytest.mark.django_db
def test_an_event_linked_without_the_key_is_caught_even_with_the_anchor(trail):
    """The issue's forgery: "admin changed roles" appended at the head with a plain SHA-256 link, as the database
    itself used to compute it. The key id it claims is the real one; the link is not its HMAC."""
    forged = forge(previous_hash=trail[-1].hash, key_id=AuditEvent.signing_key_id(), link=sha256_link)
    expected = rf"rewritten at event #{forged.pk}: its hash does not follow .* without the key"
    with pytest.raises(CommandError, match=expected) as error:
        call_command("verify_audit", anchor=trail[-1].hash)
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_an_event_claiming_to_predate_the_keys_is_caught(trail):
    forged = forge(previous_hash=trail[-1].hash, key_id=AuditEvent.LEGACY_KEY_ID, link=sha256_link)
    with pytest.raises(CommandError, match=rf"rewritten at event #{forged.pk}: it is linked without a key"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_an_event_claiming_a_key_the_portal_does_not_hold_is_caught(trail):
    forged = forge(previous_hash=trail[-1].hash, key_id="k0", link=sha256_link)
    with pytest.raises(CommandError, match=rf"rewritten at event #{forged.pk}: it is linked with key 'k0', which"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_an_event_slipped_into_the_past_is_caught(trail):
    """Even a forger who could link an event where they want cannot know where the chain continues after it."""
    forged = forge(previous_hash=trail[0].hash, key_id=AuditEvent.signing_key_id(), link=keyed_link)
    with pytest.raises(CommandError, match=rf"rewritten at event #{forged.pk}: its previous_hash"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_a_deleted_event_with_the_chain_relinked_without_the_key_is_caught(trail):
    """The issue's other attack: the table's owner deletes an event and re-links every later one, as the database
    used to link them. Without the key the first re-linked event gives it away."""
    victim, successors = trail[-3], trail[-2:]
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [victim.pk])
    previous = trail[-4].hash
    for event in successors:
        relinked = sha256_link(previous, event.content_hash)
        tamper(
            "UPDATE incidents_auditevent SET previous_hash = %s, hash = %s WHERE id = %s",
            [previous, relinked, event.pk],
        )
        previous = relinked
    with pytest.raises(CommandError, match=rf"rewritten at event #{successors[0].pk}: its hash does not follow"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_keys_rotate_and_retired_keys_still_verify(trail, settings, capsys):
    first_key = settings.PORTAL_AUDIT_KEYS[0]
    newer_key = ("k2", "a-newer-secret-of-at-least-32-characters")
    settings.PORTAL_AUDIT_KEYS = [newer_key, first_key]
    newer = audit_record(action="test.after_rotation")
    assert (newer.key_id, trail[-1].key_id) == ("k2", first_key[0])
    call_command("verify_audit")
    assert f"{len(trail) + 1} events verified" in capsys.readouterr().out

    # A key dropped while events still need it: they can no longer be told from forgeries.
    settings.PORTAL_AUDIT_KEYS = [newer_key]
    expected = rf"rewritten at event #{trail[0].pk}: it is linked with key '{first_key[0]}'"
    with pytest.raises(CommandError, match=expected):
        call_command("verify_audit")


@pytest.mark.django_db
def test_the_anchor_an_earlier_run_printed_is_confirmed(trail, capsys):
    call_command("verify_audit", anchor=trail[-2].hash.upper())  # as copied from anywhere
    out = capsys.readouterr().out
    assert "Audit trail intact" in out
    assert f"still holds the anchored event #{trail[-2].pk}" in out


@pytest.mark.django_db
def test_events_removed_from_the_end_are_caught_by_the_anchor(trail, capsys):
    # The last event was the head a previous run printed; removing it leaves a chain that still links up.
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [trail[-1].pk])
    call_command("verify_audit")
    assert "Audit trail intact" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"cut short: the anchored event .* is no longer in the trail") as error:
        call_command("verify_audit", anchor=trail[-1].hash)
    assert error.value.returncode == 3


@pytest.mark.django_db
def test_an_anchor_that_is_not_a_hash_is_refused(trail):
    with pytest.raises(CommandError, match="--anchor takes a hash as this command prints it"):
        call_command("verify_audit", anchor="latest")


@pytest.mark.django_db
def test_an_empty_trail_is_intact_while_no_head_was_published(capsys):
    call_command("verify_audit")
    assert "no events yet, and no head was ever published" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_for_a_shell(plans, support_user):
    """Run as an operator would, in its own process, against a committed tampered table."""
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="A")
    env = {"DJANGO_SETTINGS_MODULE": "portal.settings.test", "PATH": "/usr/bin:/bin"}
    env |= {name: value for name, value in os.environ.items() if name.startswith("AWS_")}  # the sandbox's S3
    db = settings.DATABASES["default"]
    env["DATABASE_URL"] = f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    command = [sys.executable, "manage.py", "verify_audit"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "Audit trail intact" in ok.stdout
    victim = AuditEvent.objects.order_by("id").first()
    tamper("UPDATE incidents_auditevent SET actor_label = 'someone-else' WHERE id = %s", [victim.pk])
    broken = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR, check=False)
    assert broken.returncode == 1
    assert f"rewritten at event #{victim.pk}" in broken.stderr
