"""Django's database sessions, read by a query the ORM compiles once per process.

Every request with a session reads it first. Building `Session.objects.get(session_key=…, expire_date__gt=now)`
cost the ORM twice as much CPU as running it; here the compiled SQL is kept and run with `raw()`, which makes the
row a `Session` with the backend's converters, as the queryset would. Expiry is read by the database's clock;
writing, expiring and clearing sessions are Django's. Set as SESSION_ENGINE = "portal.sessions".
"""

import functools

from django.contrib.sessions.backends import db
from django.db import router
from django.db.models.functions import Now

from portal import database

KEY = "<session key>"  # the placeholder for the key: no session key has brackets or spaces


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        query = _session_query(self.model, router.db_for_read(self.model))
        sessions = list(query.raw([self.session_key]))
        if not sessions:
            self._session_key = None  # unknown or expired: a new session, as Django's own store does
            return None
        return sessions[0]


@functools.cache
def _session_query(model, alias: str) -> database.CompiledQuery:
    """The session with a given key, unless it has expired (by the database's clock)."""
    queryset = model._default_manager.db_manager(alias).filter(session_key=KEY, expire_date__gt=Now())
    return database.compiled(queryset, [KEY])
