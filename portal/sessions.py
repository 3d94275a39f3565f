"""Django's database sessions, read by a query the ORM compiles once per process.

Every request with a session reads it first. Building `Session.objects.get(session_key=…, expire_date__gt=now)`
cost the ORM twice as much CPU as running it; here the compiled SQL is kept and run with `raw()`, which makes the
row a `Session` with the backend's converters, as the queryset would. Writing, expiry and clearing are Django's.
Set as SESSION_ENGINE = "portal.sessions".
"""

import functools

from django.contrib.sessions.backends import db
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        model = self.model
        alias = router.db_for_read(model)
        sql, order = _session_query(model, alias)
        now = model._meta.get_field("expire_date").get_db_prep_value(timezone.now(), connections[alias])
        values = {"key": self.session_key, "now": now}
        sessions = list(model._default_manager.db_manager(alias).raw(sql, [values[name] for name in order]))
        if not sessions:
            self._session_key = None  # unknown or expired: a new session, as Django's own store does
            return None
        return sessions[0]


KEY = "session-key"


@functools.cache
def _session_query(model, alias: str) -> tuple[str, tuple[str, ...]]:
    """The SQL of the session with a given key that has not expired, and the order of its parameters."""
    queryset = model._default_manager.filter(session_key=KEY, expire_date__gt=timezone.now())
    sql, params = queryset.query.get_compiler(alias).as_sql()
    order = tuple("key" if param == KEY else "now" for param in params)
    if sorted(order) != ["key", "now"]:
        raise ImproperlyConfigured(f"The session's query should take its key and the time; it takes {params!r}.")
    return sql, order
