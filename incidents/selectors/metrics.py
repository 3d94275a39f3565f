"""What /metrics reads from the database at scrape time: the declarations' states and the queue.

Read rather than counted as they change: the declaration row is the source of truth, and its state is changed by
web processes, workers and the sweeper on any host; a count kept per process would forget whatever happened before
that process started. Two queries per scrape: one count grouped by state and source, which reads the whole table
(docs/operations.md has its cost), and the oldest queued row, found through the (state, created) index.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count

from ..models import Declaration


@dataclass(frozen=True)
class DeclarationCounts:
    by_state_and_source: dict[tuple[str, str], int]
    oldest_queued_at: datetime | None


def declaration_counts() -> DeclarationCounts:
    """How many declarations are in each state, per source (every combination, zero included), and when the oldest
    declaration still waiting for a worker was made."""
    counts = {(state, source): 0 for state in Declaration.State.values for source in Declaration.Source.values}
    rows = Declaration.objects.order_by().values_list("state", "source").annotate(count=Count("pk"))
    for state, source, count in rows:
        counts[(state, source)] = count
    oldest = (
        Declaration.objects.filter(state=Declaration.State.QUEUED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return DeclarationCounts(by_state_and_source=counts, oldest_queued_at=oldest)
