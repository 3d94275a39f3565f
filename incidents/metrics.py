"""What the portal counts as things happen, for Prometheus (prometheus-client); /metrics serves them
(views/metrics.py) beside what it reads from the database at scrape time (declarations still in flight, the queue).

Each process counts what it does: a gunicorn worker its API requests and sign-ins, a Celery worker's child its AWS
calls and declarations started. With PROMETHEUS_MULTIPROC_DIR set (as `make run`, the tests and production set it),
every process writes its values to files in that directory and /metrics adds them all up, so a scrape that reaches
any web process sees the work of every process on the host. docs/operations.md lists them with alert rules.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

DECLARATIONS_CREATED = Counter(
    "portal_declarations_created",
    "Declarations stored, by where they were made (web or api); a repeated idempotency key counts once.",
    ["source"],
)
DECLARATIONS_FINISHED = Counter(
    "portal_declarations_finished",
    "Declarations that reached a final state (started or failed), by where they were made.",
    ["state", "source"],
)
AWS_CALLS = Counter(
    "portal_aws_calls",
    "AWS API calls by service, operation and outcome: success, or the error code (AWS's or the portal's own, such as "
    "ConnectionError or PortalRateLimited).",
    ["service", "operation", "outcome"],
)
AWS_CALL_SECONDS = Histogram(
    "portal_aws_call_duration_seconds",
    "How long an AWS API call took as the portal waited for it: botocore's retries and a wait for a StartIncident "
    "rate-limit slot included.",
    ["service", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DECLARATION_TO_STARTED_SECONDS = Histogram(
    "portal_declaration_to_started_seconds",
    "Time from a declaration being stored to AWS's incident record, by where it was declared (web or api).",
    ["source"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
SWEEPER_REDISPATCHES = Counter(
    "portal_sweeper_redispatches",
    "Work the outbox sweeper handed to the workers again: declarations still queued or starting for too long, and "
    "started incidents whose files wait to be attached.",
    ["kind"],
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "portal_rate_limit_wait_seconds",
    "How long a call waited for a slot of a portal-wide rate limit (0 when one was free).",
    ["limit"],
    buckets=(0, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
)
RATE_LIMIT_REFUSALS = Counter(
    "portal_rate_limit_refusals",
    "Calls sent back to retry later because the rate limit had no slot within the longest wait allowed.",
    ["limit"],
)
API_REQUESTS = Counter(
    "portal_api_requests",
    "Requests to the JSON API by operation (unknown for paths that match none) and HTTP status.",
    ["operation", "status"],
)
SIGN_INS = Counter(
    "portal_sign_ins",
    "Sign-ins through the login page: succeeded, or refused (a wrong password, a disabled account, a lock-out).",
    ["outcome"],
)

API_PREFIX = "/api/"


def api_request_metrics(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: count each API request by operation and status, once the response (an error's too) is made."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if request.path_info.startswith(API_PREFIX):
            match = request.resolver_match
            operation = (match.url_name if match is not None else None) or "unknown"
            API_REQUESTS.labels(operation=operation, status=str(response.status_code)).inc()
        return response

    return middleware


def sign_in_succeeded(**_kwargs) -> None:
    """Receiver of django.contrib.auth's user_logged_in (connected in receivers.py)."""
    SIGN_INS.labels(outcome="succeeded").inc()


def sign_in_refused(**_kwargs) -> None:
    """Receiver of user_login_failed, which Django also sends when django-axes refuses a locked-out account."""
    SIGN_INS.labels(outcome="refused").inc()
