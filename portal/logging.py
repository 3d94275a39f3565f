"""Structured logs: one JSON object per line, with the declaration's context as fields.

Only the fields named in CONTEXT_FIELDS are copied from a record's `extra`, so that nothing unexpected (a request
body, a credential) can reach the logs by accident.
"""

import json
import logging
from datetime import UTC, datetime

CONTEXT_FIELDS = (
    "declaration_id",
    "client_token",
    "state",
    "attempt",
    "event",
    "error_code",
    "incident_record_arn",
    "related_item_id",
    "attachment_state",
    "task_id",
    "count",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            # The exception's type and message only: a traceback can carry request data and environment details.
            exc_type, exc = record.exc_info[0], record.exc_info[1]
            document["exception"] = exc_type.__name__ if exc_type else "Exception"
            document["exception_message"] = str(exc)[:300]
        return json.dumps(document, default=str, ensure_ascii=False)
