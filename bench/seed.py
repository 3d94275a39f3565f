"""Years of history, made in bulk by PostgreSQL itself: declarations with a related item and three audit events each.

Rows are made with INSERT … SELECT over generate_series, so a million declarations take minutes, not hours. Titles
come from a small vocabulary so that searches match a realistic share of rows.
"""

from django.db import connection

TITLES = [
    "Checkout returns 500 for some customers",
    "Login page times out",
    "Payment provider declines every card",
    "Search results are empty",
    "Nightly export is late",
    "Elevated latency on the public API",
    "Mobile app cannot sync",
    "Suspicious access to the admin console",
    "Email notifications are delayed",
    "Status page is unreachable",
]

DECLARATIONS_SQL = """
INSERT INTO incidents_declaration (
    declared_by_id, response_plan_id, title, impact, effective_title, effective_impact, source, state,
    client_token, idempotency_key, request_fingerprint, incident_record_arn, failure_code, failure_reason,
    attempts, aws_request, aws_response, trigger_details, created_at, updated_at, dispatched_at, started_at,
    is_drill, aws_status, resolved_at
)
SELECT
    users[1 + g %% cardinality(users)],
    plans[1 + (g * 7) %% cardinality(plans)],
    CASE WHEN g %% 3 = 0 THEN '' ELSE titles[1 + g %% cardinality(titles)] || ' #' || g END,
    CASE WHEN g %% 4 = 0 THEN NULL ELSE 1 + g %% 5 END,
    titles[1 + g %% cardinality(titles)] || ' #' || g,
    1 + g %% 5,
    CASE WHEN g %% 10 = 0 THEN 'api' ELSE 'web' END,
    CASE WHEN g %% 37 = 0 THEN 'failed' ELSE 'started' END,
    'bench-' || md5(g::text),
    NULL, '',
    CASE WHEN g %% 37 = 0 THEN '' ELSE 'arn:aws:ssm-incidents::123456789012:incident-record/bench/' || md5(g::text) END,
    CASE WHEN g %% 37 = 0 THEN 'ResourceNotFoundException' ELSE '' END,
    CASE WHEN g %% 37 = 0 THEN 'The response plan does not exist.' ELSE '' END,
    1, NULL, NULL, NULL,
    -- Each batch reaches further back: a million declarations cover two years, one every 63 seconds.
    now() - g * interval '63 seconds',
    now() - g * interval '63 seconds',
    now() - g * interval '63 seconds',
    now() - g * interval '63 seconds' + interval '20 milliseconds',
    -- One declaration in 500 a drill; the started ones open for their first day, resolved after.
    g %% 500 = 0,
    CASE WHEN g %% 37 = 0 THEN '' WHEN g < 1400 THEN 'OPEN' ELSE 'RESOLVED' END,
    CASE WHEN g %% 37 = 0 OR g < 1400 THEN NULL ELSE now() - g * interval '63 seconds' + interval '2 hours' END
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
     (SELECT array_agg(id ORDER BY id) AS plans FROM incidents_responseplan) AS p,
     (SELECT array_agg(id ORDER BY id) AS users FROM auth_user) AS u,
     (SELECT %(titles)s::text[] AS titles) AS t
"""

ITEMS_SQL = """
INSERT INTO incidents_relateditem (declaration_id, kind, title, value, position, file_name, content_type, size,
                                   s3_bucket, s3_key, attachment_state, attachment_error, attachment_attempts)
SELECT id, 'link', 'Status page', 'https://status.example.com/incidents/' || id, 0, '', '', NULL, '', '', '', '', 0
FROM incidents_declaration WHERE id > %(after)s::bigint
"""

AUDIT_SQL = """
INSERT INTO incidents_auditevent (declaration_id, response_plan_id, actor_id, actor_label, action, details,
                                  ip_address, created_at, content_hash, previous_hash, hash, key_id)
SELECT d.id, NULL, CASE WHEN step = 1 THEN d.declared_by_id END, CASE WHEN step = 1 THEN 'bench' ELSE 'system' END,
       (ARRAY['declaration.queued', 'declaration.starting', 'declaration.started'])[step],
       '{}'::jsonb, CASE WHEN step = 1 THEN '127.0.0.1'::inet END,
       d.created_at + step * interval '5 milliseconds',
       md5(d.id::text || 'c' || step::text) || md5(d.id::text || 'cp' || step::text),
       md5(d.id::text || (step - 1)::text) || md5(d.id::text || 'p' || (step - 1)::text),
       md5(d.id::text || step::text) || md5(d.id::text || 'p' || step::text),
       'bench'
FROM incidents_declaration d, generate_series(1, 3) AS step
WHERE d.id > %(after)s::bigint
"""


def seed_history(*, total: int, batch: int = 100_000) -> None:
    """Grow the history to `total` declarations (what exists already counts)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM incidents_declaration")
        existing, _ = cursor.fetchone()
        for start in range(existing + 1, total + 1, batch):
            stop = min(start + batch - 1, total)
            cursor.execute("SELECT coalesce(max(id), 0) FROM incidents_declaration")
            (after,) = cursor.fetchone()
            cursor.execute(DECLARATIONS_SQL, {"start": start, "stop": stop, "titles": TITLES})
            cursor.execute(ITEMS_SQL, {"after": after})
            # Stand-in hashes, written as they are: linking millions of rows one by one under the key would take
            # hours, and the bench measures reads of the trail, not its verification.
            cursor.execute(AUDIT_SQL, {"after": after})
        cursor.execute("VACUUM ANALYZE incidents_declaration")
        cursor.execute("VACUUM ANALYZE incidents_relateditem")
        cursor.execute("VACUUM ANALYZE incidents_auditevent")
