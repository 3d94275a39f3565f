"""Health: a bare liveness answer for anyone (load balancers), the detailed readiness report for operators."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .. import health
from .access import operator_required


@login_not_required
@never_cache
@require_safe
def liveness(request: HttpRequest) -> HttpResponse:
    """200 "ok" while this process serves requests; nothing about the parts behind it (no login, no work)."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


@operator_required
@never_cache
@require_safe
def readiness(request: HttpRequest) -> JsonResponse:
    """Database, Redis, worker heartbeat and AWS, each ok or not: 200 when all are, else 503 (operators only)."""
    healthy, report = health.health_report()
    return JsonResponse(report, status=200 if healthy else 503)
