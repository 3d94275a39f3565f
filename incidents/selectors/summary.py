"""Reads the summary: declarations per day (or week) and impact, and per response plan."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate, TruncWeek
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


def declarations_summary(*, user, start: date, end: date) -> Summary:
    """Counts per day (or week, over long ranges) and impact, and per response plan, between two days."""
    declarations = declarations_visible_to(user=user).filter(
        created_at__gte=start_of_day(start), created_at__lt=start_of_day(end + timedelta(days=1))
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
    for plan_row in plan_rows:
        per_plan.setdefault(plan_row["response_plan_id"], {})[plan_row["effective_impact"]] = plan_row["count"]
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
