"""What /metrics reads from the database at scrape time: the declarations still in flight and the queue.

Read rather than counted as they change: how many declarations wait *now* is what the stuck-queue alert needs, the
declaration row is the source of truth, and its state is changed by web processes, workers and the sweeper on any
host; a count kept in a process would forget whatever happened before that process started. Only the unfinished
states are read (few rows, through the state indexes): counting every declaration by state read the whole table,
0.5-1 s per million rows here, on every scrape. The finished ones only grow, so they are counted as they happen
(metrics.DECLARATIONS_FINISHED), where Prometheus's rate() is what a dashboard wants of them anyway.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count

from ..models import Declaration

IN_FLIGHT = (Declaration.State.QUEUED, Declaration.State.STARTING)


@dataclass(frozen=True)
class DeclarationsInFlight:
    by_state_and_source: dict[tuple[str, str], int]
    oldest_queued_at: datetime | None


def declarations_in_flight() -> DeclarationsInFlight:
    """How many declarations are queued or starting, per source (every combination, zero included), and when the
    oldest declaration still waiting for a worker was made."""
    counts = {(str(state), source): 0 for state in IN_FLIGHT for source in Declaration.Source.values}
    rows = (
        Declaration.objects.filter(state__in=IN_FLIGHT)
        .order_by()
        .values_list("state", "source")
        .annotate(count=Count("pk"))
    )
    for state, source, count in rows:
        counts[(state, source)] = count
    oldest = (
        Declaration.objects.filter(state=Declaration.State.QUEUED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return DeclarationsInFlight(by_state_and_source=counts, oldest_queued_at=oldest)
