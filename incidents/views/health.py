"""/healthz, for load balancers and monitors."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import health


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, Redis, worker heartbeat and AWS reachability, for load balancers and monitors (no login)."""
    healthy, report = health.health_report()
    return JsonResponse(report, status=200 if healthy else 503)
