"""Reads: every query the interfaces need, in one place."""

import contextlib
import csv
import functools
import io
import itertools
import json
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection, connections, router, transaction
from django.db.models import (
    Case,
    Count,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Concat, Left, TruncDate, TruncWeek
from django.db.models.lookups import In
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal import database

from . import aws, roles
from .models import ApiToken, AttachmentState, AuditEvent, Declaration, RelatedItem, ResponsePlan

RELATED_ITEM_TYPES = {
    RelatedItem.Kind.LINK: ("OTHER", "url"),
    RelatedItem.Kind.RESOURCE: ("INVOLVED_RESOURCE", "arn"),
    RelatedItem.Kind.FILE: ("ATTACHMENT", "arn"),
}


def response_plans_available_to(*, user) -> QuerySet[ResponsePlan]:
    """The plans this person may declare with: shown, still in AWS, and open to one of their groups.

    Each plan carries `available_to` (the person's id), so that checking it again for them costs no query."""
    plans = _plans_available(group_ids=None if user.is_superuser else roles.group_ids(user))
    return plans.annotate(available_to=Value(user.pk, output_field=IntegerField()))


def _plans_available(*, group_ids: list[int] | None) -> QuerySet[ResponsePlan]:
    """`group_ids` None: every plan that is shown and still in AWS (for superusers)."""
    plans = ResponsePlan.objects.filter(is_visible=True, deleted_in_aws=False)
    if group_ids is None:
        return plans
    return plans.filter(Q(allowed_groups=None) | Q(allowed_groups__in=group_ids)).distinct()


def response_plan_available_get(*, user, pk: int) -> ResponsePlan | None:
    """The plan with this id if the person may declare with it (as `response_plans_available_to`), else None.

    The declare form asks this on every submission: the query is built by the ORM once per process and number of
    groups (`_plan_available_query`), which saves more CPU (0.6 ms) than the query costs to run."""
    group_ids = None if user.is_superuser else roles.group_ids(user)
    query = _plan_available_query(None if group_ids is None else len(group_ids))
    plan = next(iter(query.raw([pk, *(group_ids or ())])), None)
    if plan is not None:
        plan.available_to = user.pk
    return plan


@functools.cache
def _plan_available_query(groups: int | None) -> database.CompiledQuery:
    placeholders = _plan_available_placeholders(groups)
    plans = _plans_available(group_ids=None if groups is None else placeholders[1:]).filter(pk=-1)
    return database.compiled(plans, placeholders)


def _plan_available_placeholders(groups: int | None) -> list[int]:
    """-1 for the plan's id, -2, -3, … for the person's groups: no real id is negative."""
    return [-1 - index for index in range(1 + (groups or 0))]


def warm_up_declare() -> None:
    """Build the plan lookup of the declare POST (`response_plan_available_get`) for an administrator and for a
    person in one or more of the portal's roles, and run each once for a plan that cannot exist, so that a new
    process's first declaration finds them built and the connection's catalog caches filled."""
    for groups in (None, *range(1, len(roles.ALL) + 1)):
        list(_plan_available_query(groups).raw(_plan_available_placeholders(groups)))


def response_plan_is_available_to(*, user, response_plan: ResponsePlan) -> bool:
    if user.pk is not None and getattr(response_plan, "available_to", None) == user.pk:
        return True  # selected for this person just now, by the query above
    return response_plan_available_get(user=user, pk=response_plan.pk) is not None


def declarations_visible_to(*, user) -> QuerySet[Declaration]:
    declarations = Declaration.objects.select_related("response_plan", "declared_by")
    if roles.is_manager(user):
        return declarations
    return declarations.filter(declared_by=user)


def declaration_get_for(*, user, declaration_id: int) -> Declaration | None:
    return declarations_visible_to(user=user).filter(pk=declaration_id).first()


def declaration_audit_trail(*, declaration: Declaration) -> QuerySet[AuditEvent]:
    return declaration.audit_events.order_by("id")


def declaration_url(declaration: Declaration) -> str:
    path = reverse("incidents:declaration-detail", kwargs={"declaration_id": declaration.pk})
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def declaration_for_start(declaration_id: int) -> Declaration:
    """The declaration to start, locked until the transaction ends, with its plan's ARN and its declarer's
    username: all StartIncident needs of those two (their other fields load when asked for).

    The worker reads this for every declaration: the query is built by the ORM once per process
    (`_declaration_for_start_query`), which saves more CPU than running it costs."""
    alias = router.db_for_write(Declaration)
    query = _declaration_for_start_query(alias)
    found = list(query.raw([declaration_id]))
    if not found:
        raise Declaration.DoesNotExist(f"Declaration {declaration_id} does not exist.")
    declaration = found[0]
    user_model = get_user_model()
    declaration.response_plan = ResponsePlan.from_db(
        alias, ["id", "arn"], [declaration.response_plan_id, declaration.plan_arn]
    )
    declaration.declared_by = user_model.from_db(
        alias, ["id", user_model.USERNAME_FIELD], [declaration.declared_by_id, declaration.declarer_username]
    )
    del declaration.plan_arn, declaration.declarer_username
    return declaration


@functools.cache
def _declaration_for_start_query(alias: str) -> database.CompiledQuery:
    username = get_user_model().USERNAME_FIELD
    declarations = (
        Declaration.objects.db_manager(alias)
        .select_for_update(of=("self",))
        .filter(pk=-1)
        .order_by()
        .annotate(plan_arn=F("response_plan__arn"), declarer_username=F(f"declared_by__{username}"))
    )
    return database.compiled(declarations, [-1])


def declaration_related_items(declaration: Declaration) -> list[tuple[str, str, str, str]]:
    """Every related item of a declaration in its order: (kind, value, title, attachment state). In the
    declaration's transaction, with a query built once per process (the worker reads this for every one)."""
    alias = declaration._state.db or router.db_for_read(RelatedItem)
    query = _related_items_query(alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(query.sql, query.bind([declaration.pk]))
        return cursor.fetchall()


@functools.cache
def _related_items_query(alias: str) -> database.CompiledQuery:
    items = RelatedItem.objects.db_manager(alias).filter(declaration_id=-1)
    return database.compiled(items.values_list("kind", "value", "title", "attachment_state"), [-1])


def warm_up_start() -> None:
    """Build the worker's two reads of a declaration it starts and run each once for a declaration that cannot
    exist: ~3 ms to build and ~2.5 ms more for a new connection's first run, which a new worker process's first
    declaration would otherwise wait for."""
    alias = router.db_for_write(Declaration)
    # FOR UPDATE is only built inside a transaction.
    with transaction.atomic(using=alias), contextlib.suppress(Declaration.DoesNotExist):
        declaration_for_start(-1)
    declaration_related_items(Declaration(pk=-1))


def declaration_start_request(
    declaration: Declaration, related_items: list[tuple[str, str, str, str]] | None = None
) -> dict[str, Any]:
    """The exact StartIncident request for a declaration — identical on every attempt. `related_items` as
    `declaration_related_items` gives them, when the caller has read them already."""
    if related_items is None:
        related_items = declaration_related_items(declaration)
    return start_incident_request(
        response_plan=declaration.response_plan,
        client_token=declaration.client_token,
        title=declaration.title,
        impact=declaration.impact,
        # Files still waiting for S3 are left out: the incident must not wait for them (they are attached later).
        related_items=[
            (kind, value, title)
            for kind, value, title, state in related_items
            if state not in (AttachmentState.PENDING, AttachmentState.FAILED)
        ],
        declared_by=declaration.declared_by.get_username(),
        declaration_id=declaration.pk,
        declaration_url=declaration_url(declaration),
        created_at=declaration.created_at,
        trigger_details=declaration.trigger_details,
    )


def start_incident_request(
    *,
    response_plan: ResponsePlan,
    client_token: str,
    title: str,
    impact: int | None,
    related_items: list[tuple[str, str, str]],
    declared_by: str,
    declaration_id: int | str,
    declaration_url: str,
    created_at: datetime,
    trigger_details: dict[str, str] | None = None,
) -> dict[str, Any]:
    """StartIncident's request from its parts; `related_items` are (kind, value, title).

    Title and impact are sent only where the person set them: AWS then takes the plan's own. The declare page's
    preview calls this too, with stand-ins for what only exists once the declaration is stored.
    An API caller's own triggerDetails (say, the alarm that fired) are sent as given; otherwise the portal names
    itself as the source and the declarer and declaration in rawData.
    """
    request: dict[str, Any] = {"responsePlanArn": response_plan.arn, "clientToken": client_token}
    if title:
        request["title"] = title
    if impact:
        request["impact"] = impact
    items = [
        related_item_for_aws(kind=kind, value=value, title=item_title) for kind, value, item_title in related_items
    ]
    if items:
        request["relatedItems"] = items
    if trigger_details:
        trigger = dict(trigger_details)
        trigger["timestamp"] = datetime.fromisoformat(trigger["timestamp"])
        request["triggerDetails"] = trigger
        return request
    raw_data = json.dumps(
        {"declaredBy": declared_by, "declarationId": declaration_id, "declarationUrl": declaration_url},
        separators=(",", ":"),
    )
    request["triggerDetails"] = {
        "source": settings.PORTAL_TRIGGER_SOURCE,
        "timestamp": created_at,
        "rawData": raw_data[: aws.start_incident_limits()["trigger_raw_data_max_length"]],
    }
    return request


# --- Attachments -----------------------------------------------------------------------------------------


def related_item_for_aws(*, kind: str, value: str, title: str = "") -> dict[str, Any]:
    """One related item as StartIncident and UpdateRelatedItems take it."""
    item_type, value_key = RELATED_ITEM_TYPES[kind]
    related: dict[str, Any] = {"identifier": {"type": item_type, "value": {value_key: value}}}
    if title:
        related["title"] = title
    return related


# --- History: filters, keyset pages, export, summary ------------------------------------------------------

# Each sort is a lexicographic key ending in the primary key, so that rows with equal timestamps still have one
# place. "-name" is the exact reverse of "name", so one index serves both directions (scanned backwards).
HISTORY_SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "created": (("created_at", False), ("id", False)),
    "impact": (("effective_impact", False), ("created_at", True), ("id", True)),
    "state": (("state", False), ("created_at", True), ("id", True)),
}
HISTORY_SORTS.update({f"-{name}": tuple((f, not desc) for f, desc in key) for name, key in list(HISTORY_SORTS.items())})
DEFAULT_SORT = "-created"
CURSOR_SALT = "incidents.history.cursor"


@dataclass(frozen=True)
class HistoryFilters:
    """The history's filters, as they arrive in the URL; every one optional."""

    state: str = ""
    response_plan_id: int | None = None
    impact: int | None = None
    declared_by: str = ""
    date_from: date | None = None
    date_to: date | None = None
    search: str = ""
    sort: str = DEFAULT_SORT


def response_plan_choices() -> list[tuple[int, str]]:
    """Every plan the portal knows, hidden and deleted ones too (their declarations stay in the history), as
    (id, label) by name: the history's plan filter. Tuples rather than model instances, as it is built for every
    page of the history: 200 plans take 0.4 ms this way, 1.5 ms as model instances."""
    rows = ResponsePlan.objects.order_by("name").values_list("id", "name", "display_name", "aws_display_name")
    return [
        (pk, ResponsePlan.label_of(name=name, display_name=display_name, aws_display_name=aws_display_name))
        for pk, name, display_name, aws_display_name in rows
    ]


@dataclass
class HistoryPage:
    rows: list[Declaration]
    next_cursor: str | None
    previous_cursor: str | None


def declarations_filtered(*, user, filters: HistoryFilters) -> QuerySet[Declaration]:
    """The declarations this person may see that match the filters, in the chosen order (no pagination)."""
    declarations = declarations_visible_to(user=user)
    if filters.state:
        declarations = declarations.filter(state=filters.state)
    if filters.response_plan_id:
        declarations = declarations.filter(response_plan_id=filters.response_plan_id)
    if filters.impact:
        declarations = declarations.filter(effective_impact=filters.impact)
    if filters.declared_by:
        declarations = declarations.filter(declared_by__username=filters.declared_by)
    # Dates are whole days in the portal's time zone, both ends included.
    if filters.date_from:
        declarations = declarations.filter(created_at__gte=_start_of_day(filters.date_from))
    if filters.date_to:
        declarations = declarations.filter(created_at__lt=_start_of_day(filters.date_to + timedelta(days=1)))
    if filters.search:
        # Served by the trigram index on UPPER(effective_title) on PostgreSQL.
        declarations = declarations.filter(effective_title__icontains=filters.search)
    return declarations.order_by(*_order_by(HISTORY_SORTS[filters.sort]))


def declarations_page(
    *, user, filters: HistoryFilters, cursor: str = "", backwards: bool = False, page_size: int
) -> HistoryPage:
    """One page of the history by keyset: `cursor` is the edge row of the page we come from.

    Costs one indexed range scan whatever the page number, unlike OFFSET, and never skips or repeats a row
    when new declarations arrive between clicks.
    """
    key = HISTORY_SORTS[filters.sort]
    declarations = declarations_filtered(user=user, filters=filters)
    edge = _cursor_values(cursor, key)
    if backwards and edge is None:
        backwards = False
    if backwards:
        key = tuple((name, not desc) for name, desc in key)
        declarations = declarations.order_by(*_order_by(key))
    if edge is not None:
        declarations = declarations.filter(_after(key, edge))
    rows = list(declarations[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
        has_previous, has_next = more, True
    else:
        has_previous, has_next = edge is not None, more
    sort_key = HISTORY_SORTS[filters.sort]
    return HistoryPage(
        rows=rows,
        next_cursor=_cursor_for(rows[-1], sort_key) if rows and has_next else None,
        previous_cursor=_cursor_for(rows[0], sort_key) if rows and has_previous else None,
    )


def _order_by(key) -> list[str]:
    return [f"-{name}" if desc else name for name, desc in key]


def _after(key, values: list) -> Q:
    """Rows strictly after `values` in the order `key`: (a > x) or (a = x and b > y) or …"""
    branches = []
    for index, (name, desc) in enumerate(key):
        equal = {prior: values[position] for position, (prior, _) in enumerate(key[:index])}
        branches.append(Q(**equal, **{f"{name}__{'lt' if desc else 'gt'}": values[index]}))
    condition = functools.reduce(operator.or_, branches)
    # The same bound on the leading column alone lets the planner start the index scan at the cursor.
    first, first_desc = key[0]
    return Q(**{f"{first}__{'lte' if first_desc else 'gte'}": values[0]}) & condition


def _cursor_for(row: Declaration, key) -> str:
    values = [getattr(row, name) for name, _ in key]
    # Full microsecond precision: a rounded timestamp would skip or repeat rows at the page edge.
    values = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return signing.dumps(values, salt=CURSOR_SALT, compress=True)


def _cursor_values(cursor: str, key) -> list | None:
    """The cursor's values, typed for their columns; None when it is absent, damaged or made for another sort."""
    if not cursor:
        return None
    try:
        raw = signing.loads(cursor, salt=CURSOR_SALT)
        if not isinstance(raw, list) or len(raw) != len(key):
            return None
        values = []
        for (name, _), value in zip(key, raw, strict=True):
            if name == "created_at":
                parsed = parse_datetime(value)
                if parsed is None:
                    return None
                values.append(parsed)
            elif name in ("id", "effective_impact"):
                values.append(int(value))
            else:
                values.append(str(value))
        return values
    except (signing.BadSignature, TypeError, ValueError):
        return None


def _start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection advice).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(field: str) -> Case:
    """The column as text a spreadsheet will never run: a leading apostrophe before a formula's first character."""
    return Case(
        When(In(Left(field, 1), FORMULA_PREFIXES), then=Concat(Value("'"), field, output_field=TextField())),
        default=F(field),
        output_field=TextField(),
    )


class _IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC, as Python's `isoformat()` writes it."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Stored as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return self.as_sql(compiler, connection, template="replace(%(expressions)s, ' ', 'T') || '+00:00'", **extra)


EXPORT_COLUMNS = (
    ("Number", F("id")),
    ("Declared at", _IsoTimestamp("created_at")),
    ("State", F("state")),
    ("Response plan", _text_cell("response_plan__name")),
    ("Response plan ARN", _text_cell("response_plan__arn")),
    ("Title", _text_cell("effective_title")),
    ("Title set by declarer", _text_cell("title")),
    ("Impact", F("effective_impact")),
    ("Impact set by declarer", F("impact")),
    ("Declared by", _text_cell("declared_by__username")),
    ("Source", F("source")),
    ("Incident record ARN", _text_cell("incident_record_arn")),
    ("Started at", _IsoTimestamp("started_at")),
    ("Failure code", _text_cell("failure_code")),
    ("Failure reason", _text_cell("failure_reason")),
    ("Attempts", F("attempts")),
)


def declarations_export_csv(*, user, filters: HistoryFilters, chunk_size: int) -> Iterator[str | bytes]:
    """The matching declarations as CSV, header first, streamed in constant memory.

    The database writes every cell (formula-safe text, ISO timestamps); on PostgreSQL it writes the whole CSV
    too, with COPY: a million rows in ~10 s on the slowest day seen, against ~40 s through the ORM and the csv
    module. Lines end in LF, as COPY writes them.
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([name for name, _ in EXPORT_COLUMNS])
    yield header.getvalue()
    rows = declarations_filtered(user=user, filters=filters).values_list(*(cell for _, cell in EXPORT_COLUMNS))
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            # A client that goes away closes this generator: psycopg cancels the COPY on the server.
            yield from _joined(copy, size=64 * 1024)
    else:
        yield from csv_chunks(rows.iterator(chunk_size=chunk_size), batch=chunk_size)


def _joined(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """COPY hands over one row at a time; the server writes `size` bytes per call to the socket instead."""
    buffer: list[bytes] = []
    length = 0
    for block in blocks:
        buffer.append(block)
        length += len(block)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


def csv_chunks(rows: Iterator[tuple], batch: int) -> Iterator[str]:
    """`batch` rows per chunk: csv writes each chunk in one call, and no more is ever held."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for chunk in itertools.batched(rows, batch):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@dataclass
class Summary:
    start: date
    end: date
    bucket: str  # "day" or "week"
    periods: list[date]
    # {period: {impact: count}}
    by_period: dict[date, dict[int, int]]
    # [(plan label, {impact: count}, total)] — most declarations first
    by_plan: list[tuple[str, dict[int, int], int]]
    total: int


def declarations_summary(*, user, start: date, end: date) -> Summary:
    """Counts per day (or week, over long ranges) and impact, and per response plan, between two days."""
    declarations = declarations_visible_to(user=user).filter(
        created_at__gte=_start_of_day(start), created_at__lt=_start_of_day(end + timedelta(days=1))
    )
    days = (end - start).days + 1
    bucket = "day" if days <= 62 else "week"
    trunc = TruncDate if bucket == "day" else TruncWeek
    tz = timezone.get_current_timezone()
    counts = (
        declarations.order_by()
        .annotate(period=trunc("created_at", tzinfo=tz))
        .values("period", "effective_impact")
        .annotate(count=Count("id"))
    )
    by_period: dict[date, dict[int, int]] = {}
    for row in counts:
        period = row["period"].date() if isinstance(row["period"], datetime) else row["period"]
        by_period.setdefault(period, {})[row["effective_impact"]] = row["count"]
    step = timedelta(days=1 if bucket == "day" else 7)
    first = start if bucket == "day" else start - timedelta(days=start.weekday())
    periods = []
    period = first
    while period <= end:
        periods.append(period)
        by_period.setdefault(period, {})
        period += step

    plan_rows = declarations.order_by().values("response_plan_id", "effective_impact").annotate(count=Count("id"))
    per_plan: dict[int, dict[int, int]] = {}
    for row in plan_rows:
        per_plan.setdefault(row["response_plan_id"], {})[row["effective_impact"]] = row["count"]
    labels = {plan.pk: plan.label for plan in ResponsePlan.objects.filter(pk__in=per_plan)}
    by_plan = sorted(
        ((labels[plan_id], impacts, sum(impacts.values())) for plan_id, impacts in per_plan.items()),
        key=lambda item: (-item[2], item[0]),
    )
    return Summary(
        start=start,
        end=end,
        bucket=bucket,
        periods=periods,
        by_period=by_period,
        by_plan=by_plan,
        total=sum(total for _, _, total in by_plan),
    )


# --- Curation --------------------------------------------------------------------------------------------


def response_plans_for_curation() -> QuerySet[ResponsePlan]:
    """Every plan the portal knows, with when it was last declared with (one index probe per plan)."""
    last_used = (
        Declaration.objects.filter(response_plan=OuterRef("pk")).order_by("-created_at", "-id").values("created_at")
    )
    return (
        ResponsePlan.objects.annotate(last_used=Subquery(last_used[:1]))
        .prefetch_related("allowed_groups")
        .order_by("deleted_in_aws", "-is_visible", "order", "name")
    )


def users_for_administration() -> QuerySet:
    return get_user_model().objects.prefetch_related("groups").order_by("username")


def response_plan_audit_trail(*, plan: ResponsePlan) -> QuerySet[AuditEvent]:
    return plan.audit_events.order_by("-id")


# --- Audit chain verification ------------------------------------------------------------------------------


@dataclass
class AuditVerification:
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = ""
    broken_id: int | None = None
    problem: str = ""
    anchor_id: int | None = None  # the event whose hash was given as the anchor, once the walk has passed it
    anchor_missing: bool = False

    @property
    def intact(self) -> bool:
        return self.broken_id is None and not self.anchor_missing


def audit_chain_verify(*, genesis_hash: str, anchor: str = "", chunk_size: int = 5000) -> AuditVerification:
    """Walk the whole chain in id order, holding one chunk at a time, and stop at the first broken link.

    Events removed from the very end leave a chain that still links up. `anchor`, a hash an earlier walk reported
    as the latest (kept outside the database), must still be in the chain for it to count as intact."""
    result = AuditVerification()
    expected_previous = genesis_hash
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if result.first_id is None:
            result.first_id = event.pk
        if event.previous_hash != expected_previous:
            result.broken_id = event.pk
            result.problem = (
                f"its previous_hash {event.previous_hash[:12]}… does not match the hash of the event before it "
                f"({expected_previous[:12]}…): an event was removed, inserted or reordered"
            )
            return result
        if event.content_hash != event.compute_content_hash():
            result.broken_id = event.pk
            result.problem = "its content does not match its hash: the event was changed after it was written"
            return result
        if event.hash != AuditEvent.chain_hash(event.previous_hash, event.content_hash):
            result.broken_id = event.pk
            result.problem = "its hash does not follow from its content and the previous hash: it was rewritten"
            return result
        expected_previous = event.hash
        result.checked += 1
        result.last_id = event.pk
        result.last_hash = event.hash
        if anchor and event.hash == anchor:
            result.anchor_id = event.pk
    if anchor and result.anchor_id is None:
        result.anchor_missing = True
        result.problem = (
            f"the anchored event (hash {anchor[:12]}…) is no longer in the trail: events were removed from its end, "
            "or the hash is not one this trail reported"
        )
    return result


# --- API tokens ----------------------------------------------------------------------------------------


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).select_related("revoked_by")


def api_tokens_all() -> QuerySet[ApiToken]:
    """Every token of every user, for admins."""
    return ApiToken.objects.select_related("owner", "revoked_by")


def api_token_get_for(*, user, token_id: int) -> ApiToken | None:
    """A token its owner may manage; admins may manage anyone's."""
    tokens = api_tokens_all() if roles.is_admin(user) else api_tokens_of(user=user)
    return tokens.filter(pk=token_id).first()


# --- The declare page ----------------------------------------------------------------------------------

# Stand-ins in the preview for what exists only once the declaration is stored.
ASSIGNED_ON_SUBMIT = "<assigned on submit>"


@dataclass(frozen=True)
class PreviewItem:
    kind: str
    value: str = ""
    title: str = ""
    file_name: str = ""


def response_plans_version() -> tuple[datetime | None, int]:
    """The plans' last change and their number: part of the key of a cached list of plans. Every change to a plan
    goes through save(), which sets updated_at (its allowed groups are set in the same transaction)."""
    version = ResponsePlan.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    return version["changed"], version["count"]


def response_plans_search(*, user, query: str = "", keep_pk: int | None = None) -> QuerySet[ResponsePlan]:
    """The available plans matching every word of `query` in any of their names or notes.

    `keep_pk` (the plan already chosen) stays in the list whatever the query, so that searching never unchoses it.
    """
    plans = response_plans_available_to(user=user)
    # A NUL cannot be in any stored text (nor be sent to PostgreSQL): it separates words like a space.
    words = query.replace("\x00", " ").split()
    if not words:
        return plans
    matches = Q()
    for word in words[:8]:
        matches &= (
            Q(name__icontains=word)
            | Q(display_name__icontains=word)
            | Q(aws_display_name__icontains=word)
            | Q(when_to_use__icontains=word)
            | Q(template_title__icontains=word)
            | Q(template_summary__icontains=word)
        )
    if keep_pk:
        matches |= Q(pk=keep_pk)
    return plans.filter(matches)


def response_plan_find_for(*, user, reference: str) -> ResponsePlan | None:
    """An available plan by its portal number or its AWS name (as runbooks and bookmarks name it)."""
    plans = response_plans_available_to(user=user)
    reference = reference.strip()
    if "\x00" in reference:
        return None  # no plan is named so (PostgreSQL's text cannot hold a NUL, nor be asked about one)
    if reference.isdigit():
        found = plans.filter(pk=int(reference)).first()
        if found:
            return found
    return plans.filter(Q(name=reference) | Q(arn=reference)).first()


def declarations_recent_for_plan(*, response_plan: ResponsePlan) -> QuerySet[Declaration]:
    """Declarations of this plan still queued, starting or started within the duplicate window: likely the same
    outage, declared by someone else a moment ago."""
    since = timezone.now() - timedelta(minutes=settings.PORTAL_DUPLICATE_WINDOW_MINUTES)
    return (
        Declaration.objects.filter(
            response_plan=response_plan,
            state__in=[Declaration.State.QUEUED, Declaration.State.STARTING, Declaration.State.STARTED],
            created_at__gte=since,
        )
        .select_related("declared_by", "response_plan")
        .order_by("-created_at", "-id")
    )


def attachment_key(*, client_token: str, position: int, file_name: str) -> str:
    """Where an attached file is stored in S3."""
    return f"declarations/{client_token}/{position:03d}-{file_name}"


def declaration_preview_request(
    *, response_plan: ResponsePlan, title: str, impact: int | None, items: list[PreviewItem], declared_by: str
) -> dict[str, Any]:
    """What StartIncident will receive for a declaration not yet made, with `ASSIGNED_ON_SUBMIT` stand-ins."""
    related = []
    for position, item in enumerate(items):
        if item.kind == RelatedItem.Kind.FILE:
            key = attachment_key(client_token=ASSIGNED_ON_SUBMIT, position=position, file_name=item.file_name)
            # As the service stores it: a file's title defaults to its name.
            related.append(
                (item.kind, aws.s3_object_arn(bucket=settings.PORTAL_S3_BUCKET, key=key), item.title or item.file_name)
            )
        else:
            related.append((item.kind, item.value, item.title))
    return start_incident_request(
        response_plan=response_plan,
        client_token=ASSIGNED_ON_SUBMIT,
        title=title,
        impact=impact,
        related_items=related,
        declared_by=declared_by,
        declaration_id=ASSIGNED_ON_SUBMIT,
        declaration_url=settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("incidents:declaration-detail", kwargs={"declaration_id": 0}).replace("/0/", "/<number>/"),
        created_at=timezone.now(),
    )
