import hashlib
import hmac
import json

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone


class Impact(models.IntegerChoices):
    """StartIncident's impact scale, with the plain-language meanings from the AWS documentation."""

    CRITICAL = 1, "Critical"
    HIGH = 2, "High"
    MEDIUM = 3, "Medium"
    LOW = 4, "Low"
    NO_IMPACT = 5, "No impact"

    @property
    def description(self) -> str:
        return IMPACT_DESCRIPTIONS[self.value]


IMPACT_DESCRIPTIONS = {
    1: "Full application failure that impacts many to all customers.",
    2: "Partial application failure with impact to many customers.",
    3: "The application is providing reduced service to customers.",
    4: "Customers might not be impacted by the problem yet.",
    5: "Customers aren't currently impacted, but urgent action is needed to avoid impact.",
}

# What each level looks like here, until an admin words it for the company (ImpactLevel; migration 0013 seeds these).
IMPACT_EXAMPLES = {
    1: "Checkout down for everyone",
    2: "Card payments failing in one country",
    3: "Search slow, orders still going through",
    4: "Error rate rising on a background job",
    5: "A certificate expires tomorrow",
}


class ImpactLevel(models.Model):
    """An admin's example for one impact level, shown under it wherever people choose an impact."""

    level = models.PositiveSmallIntegerField(primary_key=True, choices=Impact.choices)
    example = models.CharField(max_length=120, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.level}: {self.example}"


class ResponsePlan(models.Model):
    """A mirror of an AWS response plan, plus what the portal's admins decide about it."""

    arn = models.CharField(max_length=1000, unique=True)
    name = models.CharField(max_length=200)
    aws_display_name = models.CharField(max_length=200, blank=True)
    template_title = models.CharField(max_length=200)
    template_impact = models.PositiveSmallIntegerField(choices=Impact.choices)
    template_summary = models.TextField(blank=True)
    template_dedupe_string = models.CharField(max_length=1000, blank=True)

    display_name = models.CharField(
        max_length=200, blank=True, help_text="Shown to people instead of the AWS name when set."
    )
    when_to_use = models.TextField(blank=True, help_text="A plain-language note on when to declare with this plan.")
    is_visible = models.BooleanField(default=False, help_text="Hidden plans cannot be chosen.")
    is_drill = models.BooleanField(
        default=False, help_text="A drill plan: offered only when declaring a drill, and drills only use these."
    )
    order = models.IntegerField(default=0)
    allowed_groups = models.ManyToManyField(
        Group, blank=True, related_name="+", help_text="Who may declare with it; empty means everyone."
    )
    deleted_in_aws = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.label_of(name=self.name, display_name=self.display_name, aws_display_name=self.aws_display_name)

    @staticmethod
    def label_of(*, name: str, display_name: str, aws_display_name: str) -> str:
        """What people see: the curated name, else AWS's display name, else the plan's name."""
        return display_name or aws_display_name or name

    @property
    def template_impact_label(self) -> str:
        return f"{self.template_impact} – {Impact(self.template_impact).label}"


class Declaration(models.Model):
    """One person's (or script's) request to start an incident, and what became of it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        STARTING = "starting", "Starting"
        STARTED = "started", "Started"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        WEB = "web", "Web form"
        API = "api", "API"

    class AwsStatus(models.TextChoices):
        """The incident record's status as the worker last read it (GetIncidentRecord); blank before it started."""

        OPEN = "OPEN", "Open"
        RESOLVED = "RESOLVED", "Resolved"

    FINAL_STATES = (State.STARTED, State.FAILED)

    # No single-column indexes: the history's (declarer | plan, created) indexes below lead with these columns.
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    response_plan = models.ForeignKey(
        ResponsePlan, on_delete=models.PROTECT, related_name="declarations", db_index=False
    )
    # Empty title / null impact: the person left them to the response plan.
    title = models.CharField(max_length=200, blank=True)
    impact = models.PositiveSmallIntegerField(choices=Impact.choices, null=True, blank=True)
    # What AWS was asked for: the person's value, else the plan's at the time of declaring. Stored (not computed
    # through the plan) so that the history can filter, sort and search them with indexes over millions of rows.
    effective_title = models.CharField(max_length=200, blank=True, editable=False)
    effective_impact = models.PositiveSmallIntegerField(choices=Impact.choices, blank=True, editable=False)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)

    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # Sent as StartIncident's clientToken on every attempt, so that AWS starts one incident at most.
    client_token = models.CharField(max_length=128, unique=True)
    # The submitting form's (or API caller's) key: a repeated POST finds the declaration it already made.
    idempotency_key = models.CharField(max_length=128, unique=True, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    incident_record_arn = models.CharField(max_length=1000, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    aws_request = models.JSONField(null=True, blank=True)
    aws_response = models.JSONField(null=True, blank=True)
    # An API caller's own StartIncident triggerDetails (timestamp as ISO 8601), sent instead of the portal's.
    trigger_details = models.JSONField(null=True, blank=True)
    # When customers began to be hurt, if the declarer knows: sent as the trigger details' timestamp, so that
    # Incident Manager's metrics count from then. Null: the moment of declaring.
    impact_started_at = models.DateTimeField(null=True, blank=True)
    # A rehearsal on a drill plan: labelled everywhere and left out of the history's default view and the figures.
    is_drill = models.BooleanField(default=False)
    # The incident as AWS last described it (read by the worker, never by a page view).
    aws_status = models.CharField(max_length=16, choices=AwsStatus.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="declaration_state_updated"),
            models.Index(fields=["-created_at", "-id"], name="declaration_created"),
            # The history's filters, each followed by its keyset order (newest first).
            models.Index(fields=["state", "-created_at", "-id"], name="declaration_state_created"),
            models.Index(fields=["response_plan", "-created_at", "-id"], name="declaration_plan_created"),
            models.Index(fields=["effective_impact", "-created_at", "-id"], name="declaration_impact_created"),
            models.Index(fields=["declared_by", "-created_at", "-id"], name="declaration_declarer_created"),
            models.Index(fields=["aws_status", "-created_at", "-id"], name="declaration_aws_status_created"),
            # Drills are few: the history's "only drills" walks this small index, never the whole table.
            models.Index(
                fields=["-created_at", "-id"], condition=models.Q(is_drill=True), name="declaration_drill_created"
            ),
            # Title search (Django's icontains is UPPER(…) LIKE UPPER(…)) through trigrams instead of a table scan;
            # PostgreSQL only (migration 0003).
            GinIndex(OpClass(Upper("effective_title"), name="gin_trgm_ops"), name="declaration_title_trgm"),
        ]

    def __str__(self) -> str:
        return f"Declaration {self.pk} ({self.state})"

    def save(self, *args, **kwargs):
        # Filled here rather than in one service so that every writer (form, API, scripts) gets them right.
        self.fill_in_effective()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("incidents:declaration-detail", kwargs={"declaration_id": self.pk})

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    def fill_in_effective(self) -> None:
        """The title and impact AWS is asked for: the person's, else the plan's. save() calls this; bulk_create()
        does not, so a bulk writer fills them itself (the bench's seeding writes them in its SQL)."""
        if not self.effective_title:
            self.effective_title = self.title or self.response_plan.template_title
        if not self.effective_impact:
            self.effective_impact = self.impact or self.response_plan.template_impact


class AttachmentState(models.TextChoices):
    """Where a file stands between the form and the incident."""

    # S3 failed at declare time: the bytes wait in the database (RelatedItem.pending_content) for a task.
    PENDING = "pending", "Waiting to be uploaded"
    # In S3 before the incident started: it travels in StartIncident's relatedItems.
    STORED = "stored", "Stored, goes with the incident"
    ATTACHED = "attached", "Attached to the incident"
    FAILED = "failed", "Could not be attached"


class RelatedItem(models.Model):
    class Kind(models.TextChoices):
        LINK = "link", "Link"
        RESOURCE = "resource", "AWS resource"
        FILE = "file", "File"

    declaration = models.ForeignKey(Declaration, on_delete=models.CASCADE, related_name="related_items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # A link's URL, a resource's ARN, or a file's S3 object ARN (arn:aws:s3:::bucket/key).
    value = models.CharField(max_length=1000)
    position = models.PositiveSmallIntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    s3_bucket = models.CharField(max_length=63, blank=True)
    s3_key = models.CharField(max_length=1024, blank=True)
    # Files only: see AttachmentState. The bytes are kept here only until they reach S3.
    attachment_state = models.CharField(max_length=16, choices=AttachmentState.choices, blank=True)
    attachment_error = models.TextField(blank=True)
    attachment_attempts = models.PositiveIntegerField(default=0)
    pending_content = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        # By the column: "declaration" would order by the declaration's own ordering, joining it into every
        # query for a declaration's items.
        ordering = ["declaration_id", "position"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title or self.value}"


class AuditEvent(models.Model):
    """An append-only record of one step: who did what, when, from where.

    Events form a keyed chain: `content_hash` is a SHA-256 of the event's own content and `hash` an HMAC-SHA256,
    under the key named by `key_id` (PORTAL_AUDIT_KEYS, which the database never holds), of the previous event's
    hash and that, so that changing, removing, reordering or adding an event without the key breaks the chain.
    `services.audit.audit_record` links each event under a transaction-scoped lock, so appends from many processes line
    up. Events written before the chain was keyed carry `key_id` "sha256": a plain SHA-256 link.
    """

    LEGACY_KEY_ID = "sha256"

    declaration = models.ForeignKey(
        Declaration, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    response_plan = models.ForeignKey(
        ResponsePlan, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Kept as text too, so that the trail reads the same if the user is renamed; "system" for the worker.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    content_hash = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)
    # Not indexed: nothing looks an event up by its hash (verify_audit walks the trail in id order), and a unique
    # index over random hex made every append a random write into an index as large as the table (migration 0007).
    hash = models.CharField(max_length=64)
    # Which of PORTAL_AUDIT_KEYS linked this event (LEGACY_KEY_ID: a plain SHA-256 link, before keys).
    key_id = models.CharField(max_length=32)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def compute_content_hash(self) -> str:
        """SHA-256 over this event's own content (everything but its place in the chain)."""
        content = {
            "declaration": self.declaration_id,
            "response_plan": self.response_plan_id,
            "actor": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "details": self.details,
            "ip_address": self.ip_address,
            "created_at": self.created_at.isoformat(),
        }
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
        return hashlib.sha256(encoded.encode()).hexdigest()

    @staticmethod
    def signing_key_id() -> str:
        """The key new events are linked with: the first of PORTAL_AUDIT_KEYS."""
        if not settings.PORTAL_AUDIT_KEYS:
            raise ImproperlyConfigured("PORTAL_AUDIT_KEYS must be set to write audit events.")
        return settings.PORTAL_AUDIT_KEYS[0][0]

    @classmethod
    def chain_hash(cls, previous_hash: str, content_hash: str, key_id: str) -> str:
        """The link: HMAC-SHA256 under the key `key_id` of the key id, the previous event's hash and this event's
        content hash; for LEGACY_KEY_ID, SHA-256 of the previous hash followed by the content hash (migration
        0006's trigger). Raises LookupError for a key id PORTAL_AUDIT_KEYS does not hold."""
        if key_id == cls.LEGACY_KEY_ID:
            return hashlib.sha256((previous_hash + content_hash).encode()).hexdigest()
        secret = dict(settings.PORTAL_AUDIT_KEYS).get(key_id)
        if secret is None:
            raise LookupError(key_id)
        message = f"{key_id}:{previous_hash}:{content_hash}".encode()
        return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class ApiToken(models.Model):
    """A personal API token: it acts as its owner, with the owner's role at the time of each request.

    Only a SHA-256 hash of the secret is stored; the secret itself is shown once, when the token is created.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What this token is for, e.g. “alerting runbook”.")
    # The token's first characters, shown in lists so that people recognise a token without its secret.
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired() else "active"


class RateLimitBucket(models.Model):
    """A portal-wide rate limit kept in the database: the stand-in for the Redis token bucket when there is no Redis
    (`make run` on its embedded broker, one machine). aws/ratelimit.py reads and moves it under a row lock."""

    name = models.CharField(max_length=100, primary_key=True)
    # GCRA's "theoretical arrival time" of the next call, in seconds since the epoch (time.time()).
    next_arrival = models.FloatField(default=0)

    def __str__(self) -> str:
        return self.name


class IncidentAction(models.Model):
    """Something a person asked the portal to do to a started incident (a note, more related items, new title /
    impact / summary, resolving it): stored first, then sent by the worker with a client token of its own."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note on the timeline"
        RELATED_ITEMS = "related_items", "Related items added"
        UPDATE = "update", "Title, impact or summary changed"
        RESOLVE = "resolve", "Resolved"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    declaration = models.ForeignKey(Declaration, on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # note: {"text"}; related_items: {"items": [{"id", "kind", "value", "title"}]}; update: any of {"title",
    # "impact", "summary"}; resolve: {"note"}. Exactly what the worker sends, on every attempt.
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # The base of every call's clientToken (a suffix per call), so that AWS applies each call once.
    client_token = models.CharField(max_length=100, unique=True)
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Handed to the workers (or last attempted): the sweeper re-dispatches queued actions idle since long before.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "dispatched_at"], name="incident_action_state")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on declaration {self.declaration_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state != self.State.QUEUED


class IncidentSnapshot(models.Model):
    """The incident as the worker last read it from AWS (GetIncidentRecord, ListRelatedItems, ListTimelineEvents):
    what the declaration's page shows, so that no page view ever calls AWS. A failed read keeps the last good one."""

    declaration = models.OneToOneField(
        Declaration, on_delete=models.CASCADE, primary_key=True, related_name="incident_snapshot"
    )
    # GetIncidentRecord's incidentRecord, ListRelatedItems' relatedItems (every page), the newest timeline events
    # (newest first, each with its eventData once read), and the plan's engagements: AWS's own shapes, timestamps as
    # epoch seconds.
    record = models.JSONField(null=True, blank=True)
    related_items = models.JSONField(default=list, blank=True)
    timeline = models.JSONField(default=list, blank=True)
    timeline_truncated = models.BooleanField(default=False)
    engagements = models.JSONField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The last read that failed (AWS's error), cleared by the next good one.
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.TextField(blank=True)
    # When a refresh was last asked for: ten people watching the page, or beat, send one task, not ten.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["read_at"], name="incident_snapshot_read_at"),
            # Beat's round counts the refreshes still waiting; few rows have one.
            models.Index(
                fields=["refresh_requested_at"],
                name="incident_snapshot_requested",
                condition=models.Q(refresh_requested_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Incident snapshot of declaration {self.declaration_id}"
