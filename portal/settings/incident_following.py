"""Following started incidents: the budget of AWS reads and when incidents are read back for the declaration pages
(services/incident_refresh.py, docs/operations.md), read by base.py."""

from .environment import env

# Reading incidents back from AWS for the declaration pages (services/incident_refresh.py): GetIncidentRecord,
# ListRelatedItems, ListTimelineEvents… calls per second across every worker, a budget of their own beside
# StartIncident's (both count against the account's ssm-incidents quota). A refresh is 3 calls or more.
PORTAL_AWS_READ_RATE = env.float("PORTAL_AWS_READ_RATE", default=3)
PORTAL_AWS_READ_BURST = env.int("PORTAL_AWS_READ_BURST", default=3)
# A read waits at most this long for a slot; past it the refresh is dropped and asked for again later.
PORTAL_AWS_READ_MAX_WAIT = env.float("PORTAL_AWS_READ_MAX_WAIT", default=10)
# While someone watches a declaration's page, its incident is re-read when the last read is older than this.
PORTAL_INCIDENT_WATCH_REFRESH_AFTER = env.float("PORTAL_INCIDENT_WATCH_REFRESH_AFTER", default=15)
# How often the page of an open incident asks for news once the declaration is final (seconds).
PORTAL_INCIDENT_POLL_SECONDS = env.int("PORTAL_INCIDENT_POLL_SECONDS", default=20)
# Beat's round over the open incidents nobody watches: every interval, the stalest whose last read is older than the
# max age are queued, as many as the read budget allows in one interval, spaced out to arrive at the budget's pace.
PORTAL_INCIDENT_REFRESH_INTERVAL = env.float("PORTAL_INCIDENT_REFRESH_INTERVAL", default=30)
PORTAL_INCIDENT_REFRESH_MAX_AGE = env.float("PORTAL_INCIDENT_REFRESH_MAX_AGE", default=120)
