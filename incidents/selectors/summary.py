"""Reads the summary: declarations per day (or week) and impact, and per response plan; the median times from the
impact to the declaration, to the start in Incident Manager and to the resolution. Drills are left out unless asked
for."""

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Coalesce, TruncDate, TruncWeek
from django.utils import timezone

from ..models import ResponsePlan
from .declarations import declarations_visible_to
from .history import start_of_day


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
    include_drills: bool = False
    # Per plan and impact, plan by plan (by label) and by impact within a plan.
    durations: list["Durations"] = field(default_factory=list)


@dataclass
class Durations:
    """The median times of one plan's declarations of one impact; None where none has got that far."""

    plan: str
    impact: int
    count: int
    impact_to_declared: timedelta | None
    declared_to_started: timedelta | None
    started_to_resolved: timedelta | None


class Median(Aggregate):
    """PostgreSQL's median (an ordered-set aggregate); it leaves NULLs out, as the other aggregates do."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


def _between(later: str, earlier) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - earlier, output_field=DurationField())


# When customers were hurt: the declarer's word, else the moment of declaring (the time to declare is then zero).
SPANS = {
    "impact_to_declared": _between("created_at", Coalesce(F("impact_started_at"), F("created_at"))),
    "declared_to_started": _between("started_at", F("created_at")),
    "started_to_resolved": _between("resolved_at", F("started_at")),
}


def declarations_durations(declarations: QuerySet) -> list[Durations]:
    """The median of each span per plan and impact, computed by the database on PostgreSQL. SQLite (`make run`'s
    default) has no median: there the spans are read row by row and Python takes the medians."""
    groups = declarations.order_by().values("response_plan_id", "effective_impact")
    rows: list[dict] = []
    if connection.vendor == "postgresql":
        rows = list(groups.annotate(count=Count("id"), **{name: Median(span) for name, span in SPANS.items()}))
    else:
        spans: dict[tuple[int, int], list[tuple]] = {}
        for plan_id, impact, *values in declarations.order_by().values_list(
            "response_plan_id", "effective_impact", *(SPANS[name] for name in SPANS)
        ):
            spans.setdefault((plan_id, impact), []).append(tuple(values))
        for (plan_id, impact), values in spans.items():
            row: dict = {"response_plan_id": plan_id, "effective_impact": impact, "count": len(values)}
            for position, name in enumerate(SPANS):
                known = [value[position] for value in values if value[position] is not None]
                row[name] = statistics.median(known) if known else None
            rows.append(row)
    labels = _plan_labels({row["response_plan_id"] for row in rows})
    durations = [
        Durations(
            plan=labels[row["response_plan_id"]],
            impact=row["effective_impact"],
            count=row["count"],
            **{name: row[name] for name in SPANS},
        )
        for row in rows
    ]
    return sorted(durations, key=lambda row: (row.plan.casefold(), row.impact))


def _plan_labels(plan_ids: set[int]) -> dict[int, str]:
    return {plan.pk: plan.label for plan in ResponsePlan.objects.filter(pk__in=plan_ids)}


def declarations_summary(*, user, start: date, end: date, include_drills: bool = False) -> Summary:
    """Counts per day (or week, over long ranges) and impact, and per response plan, between two days, and the
    median times per plan and impact. Drills count only when `include_drills`."""
    declarations = declarations_visible_to(user=user).filter(
        created_at__gte=start_of_day(start), created_at__lt=start_of_day(end + timedelta(days=1))
    )
    if not include_drills:
        declarations = declarations.filter(is_drill=False)
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
    for plan_row in plan_rows:
        per_plan.setdefault(plan_row["response_plan_id"], {})[plan_row["effective_impact"]] = plan_row["count"]
    labels = _plan_labels(set(per_plan))
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
        include_drills=include_drills,
        durations=declarations_durations(declarations),
    )
