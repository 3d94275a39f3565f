"""/metrics, in Prometheus's text format, for the portal's operators (views/access.operator_required)."""

import os
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..selectors.metrics import declarations_in_flight
from .access import operator_required


class DeclarationsCollector(Collector):
    """What the database knows at scrape time: the declarations still in flight, and the queue."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = declarations_in_flight()
        declarations = GaugeMetricFamily(
            "portal_declarations_in_flight",
            "Declarations queued or starting now, by where they were made.",
            labels=["state", "source"],
        )
        queued = 0
        for (state, source), count in sorted(in_flight.by_state_and_source.items()):
            declarations.add_metric([state, source], count)
            queued += count if state == "queued" else 0
        yield declarations
        yield GaugeMetricFamily(
            "portal_declaration_queue_depth", "Declarations stored and waiting for a worker (state queued).", queued
        )
        age = 0.0
        if in_flight.oldest_queued_at is not None:
            age = max(0.0, (timezone.now() - in_flight.oldest_queued_at).total_seconds())
        yield GaugeMetricFamily(
            "portal_declaration_oldest_queued_age_seconds",
            "How long the oldest declaration still queued has waited (0 when none is).",
            age,
        )


@operator_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Every process's counts on this host (PROMETHEUS_MULTIPROC_DIR), or this process's alone without one, and
    the database's."""
    registry = CollectorRegistry()
    registry.register(DeclarationsCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY) + generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
