"""One HTTP endpoint that looks like AWS: the ssm-incidents emulator, moto's S3, and a test control API.

Each request is routed by the service name in its SigV4 credential scope (``Authorization: ... Credential=
AKID/20260101/us-east-1/ssm-incidents/aws4_request`` or the ``X-Amz-Credential`` query parameter of a
presigned URL): ``ssm-incidents`` goes to our emulator, everything else to moto's WSGI app (which serves
S3, among others). Paths under ``/_sandbox/`` are the JSON control API and never reach either.

The server is werkzeug's threaded WSGI server with moto's request handler (it keeps underscore headers that
S3 metadata needs), extended so that a request can be answered with *no response at all*: that is how the
"lose_response" fault makes botocore see a dropped connection after the operation has been performed.
"""

from __future__ import annotations

import collections
import gc
import json
import logging
import random
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from werkzeug.datastructures import EnvironHeaders
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client
from werkzeug.wsgi import get_input_stream

from .responder import Responder, UnknownAction
from .ssm_incidents import (
    ACCOUNT_ID,
    SERVICE_NAME,
    IncidentsEmulator,
    Response,
    RestJsonProtocol,
    ServiceError,
    service_model,
)
from .validation import ValidationFailed

logger = logging.getLogger("sandbox")

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
CALL_LOG_LIMIT = 10_000  # entries kept; old ones fall off so a long-running sandbox stays small


def signing_service(environ: dict[str, Any]) -> str | None:
    """The service name of the request's SigV4 credential scope, if it is signed at all."""
    found = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        return found.group(1)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        if len(parts) == 5:
            return parts[3]
    return None


class DropConnection(ConnectionAbortedError):
    """Raised by the WSGI app to close the connection without answering (the "lose_response" fault).

    werkzeug treats ConnectionError raised by an app as a dropped connection and writes nothing; our
    request handler then makes sure the socket is closed instead of waiting for another request on it.
    """


# ---------------------------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """Faults for one operation (or "*" for every ssm-incidents operation)."""

    throttle_next: int = 0
    error_next: int = 0
    lose_response_next: int = 0
    deny_next: int = 0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    lose_response_rate: float = 0.0
    latency_ms: int = 0
    # Rates and latency stop applying after this epoch time (None: until cleared). "*_next" never expire.
    expires_at: float | None = None


_COUNTERS = ("throttle_next", "error_next", "lose_response_next", "deny_next")
_RATES = ("throttle_rate", "error_rate", "lose_response_rate")
_FAULT_OF = {
    "throttle_next": "throttle",
    "error_next": "error",
    "lose_response_next": "lose_response",
    "deny_next": "deny",
    "throttle_rate": "throttle",
    "error_rate": "error",
    "lose_response_rate": "lose_response",
}


class Faults:
    """Fault injection state, shared by ``Sandbox.faults`` and ``/_sandbox/faults``.

    ``configure`` merges into the rule of one operation (``operation`` omitted: every ssm-incidents
    operation). For each call the operation's own rule is consulted before the "*" rule, and at most one
    fault fires per call, in this order: throttle_next, error_next, lose_response_next, deny_next, then the
    rates. ``s3_down`` is global: ``true`` answers every S3 request with 503 ServiceUnavailable,
    ``"connection"`` drops the connection instead; ``false`` restores S3.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self.s3_down: bool | str = False
        self._random = random.Random()

    def configure(self, spec: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Apply a spec like ``{"operation": "StartIncident", "throttle_next": 2}``; returns the new state.

        Raises ValueError naming the offending key when the spec is malformed.
        """
        spec = {**(spec or {}), **kwargs}
        operation = spec.pop("operation", None) or "*"
        if not isinstance(operation, str):
            raise ValueError("'operation' must be a string")
        if operation != "*" and operation not in service_model().operation_names:
            raise ValueError(f"'operation': {operation} is not an ssm-incidents operation")
        s3_down = spec.pop("s3_down", None)
        if s3_down not in (None, True, False, "connection"):
            raise ValueError("'s3_down' must be true, false or \"connection\"")
        seed = spec.pop("seed", None)
        duration = spec.pop("duration_s", None)
        updates: dict[str, Any] = {}
        for key, value in spec.items():
            if key in _COUNTERS or key == "latency_ms":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"'{key}' must be a non-negative integer")
            elif key in _RATES:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError(f"'{key}' must be a number between 0 and 1")
            else:
                raise ValueError(f"unknown fault setting '{key}'")
            updates[key] = value
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0
        ):
            raise ValueError("'duration_s' must be a positive number")
        with self._lock:
            if seed is not None:
                self._random.seed(seed)
            if s3_down is not None:
                self.s3_down = s3_down
            if updates or duration is not None:
                rule = self._rules.setdefault(operation, FaultRule())
                for key, value in updates.items():
                    setattr(rule, key, value)
                if duration is not None:
                    rule.expires_at = time.time() + duration
        return self.state()

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.s3_down = False

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "operations": {op: asdict(rule) for op, rule in self._rules.items()},
                "s3_down": self.s3_down,
            }

    def decide(self, operation: str) -> tuple[str | None, float]:
        """Pick the fault for one call: (``"throttle"|"error"|"lose_response"|"deny"|None``, delay seconds)."""
        now = time.time()
        with self._lock:
            rules = [rule for rule in (self._rules.get(operation), self._rules.get("*")) if rule]
            live = [rule for rule in rules if rule.expires_at is None or now < rule.expires_at]
            delay = max((rule.latency_ms for rule in live), default=0) / 1000
            for rule in rules:
                for counter in _COUNTERS:
                    if getattr(rule, counter) > 0:
                        setattr(rule, counter, getattr(rule, counter) - 1)
                        return _FAULT_OF[counter], delay
            for rule in live:
                for rate in _RATES:
                    if self._random.random() < getattr(rule, rate):
                        return _FAULT_OF[rate], delay
            return None, delay


class CallLog:
    """What the sandbox was asked, newest last; shared by ``Sandbox.calls`` and ``/_sandbox/calls``."""

    def __init__(self, limit: int = CALL_LOG_LIMIT):
        self._lock = threading.Lock()
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)

    def record(self, service: str, operation: str, params: Any) -> dict[str, Any]:
        entry = {
            "service": service,
            "operation": operation,
            "params": params,
            "received_at": time.time(),
            "status": None,
            "fault": None,
        }
        with self._lock:
            self._entries.append(entry)
        return entry  # filled in (status, fault) by the caller once the outcome is known

    def list(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if operation is None or e["operation"] == operation]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# ---------------------------------------------------------------------------------------------------------
# The WSGI application
# ---------------------------------------------------------------------------------------------------------


def _json_response(start_response, status: int, document: Any) -> list[bytes]:
    body = json.dumps(document, default=str).encode()
    start_response(
        f"{status} {_reason(status)}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


class SandboxApp:
    """WSGI app: control API, ssm-incidents emulator, or moto, chosen per request."""

    def __init__(self, emulator: IncidentsEmulator, faults: Faults, calls: CallLog):
        # Imported here so that importing sandbox.server stays cheap for code that only needs the names.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.emulator = emulator
        self.faults = faults
        self.calls = calls
        self.responder = Responder(emulator)
        self.protocol = RestJsonProtocol(service_model())
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        # /_sandbox/health answers 503 until this is set, so a launcher waiting for health does not race the
        # demo seeding that runs after the socket is already listening.
        self.ready = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._control(environ, start_response)
        if signing_service(environ) == SERVICE_NAME:
            return self._incidents(environ, start_response)
        return self._moto(environ, start_response)

    def reset_moto(self) -> None:
        """Reset every moto backend (S3 included) through moto's own reset endpoint."""
        Client(self.moto_app).post("/moto-api/reset")

    # -- ssm-incidents -------------------------------------------------------------------------------------

    def _incidents(self, environ: dict[str, Any], start_response):
        request_id = str(uuid.uuid4())
        method = environ["REQUEST_METHOD"]
        # Route on the raw path: URI labels such as /tags/{resourceArn} carry percent-encoded "/".
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", ""))
        raw_path = raw_uri.split("?", 1)[0]
        matched = self.protocol.match(method, raw_path)
        if matched is None:
            error = ServiceError(
                "UnknownOperationException", f"No ssm-incidents operation matches {method} {raw_path}."
            )
            return self._send(start_response, self.protocol.serialize_error(error, request_id))
        operation, uri_params = matched
        entry = self.calls.record(SERVICE_NAME, operation.name, None)
        response = self._run(environ, operation, uri_params, request_id, entry)
        if entry["fault"] == "lose_response":
            entry["status"] = "lost"
            logger.info("%s %s -> response deliberately lost", method, raw_path)
            raise DropConnection("sandbox fault: lose_response")
        entry["status"] = response.status
        return self._send(start_response, response)

    def _run(self, environ, operation, uri_params, request_id: str, entry: dict[str, Any]) -> Response:
        protocol = self.protocol
        try:
            params = protocol.parse_request(
                operation,
                uri_params,
                parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
                dict(EnvironHeaders(environ).items()),
                get_input_stream(environ).read(),
            )
        except ServiceError as error:
            return protocol.serialize_error(error, request_id)
        entry["params"] = params

        fault, delay = self.faults.decide(operation.name)
        entry["fault"] = fault
        if delay:
            time.sleep(delay)
        if fault == "throttle":
            return protocol.serialize_error(
                ServiceError(
                    "ThrottlingException",
                    "Rate exceeded (sandbox fault injection).",
                    quotaCode="sandbox-injected-throttle",
                    serviceCode=SERVICE_NAME,
                ),
                request_id,
            )
        if fault == "error":
            return protocol.serialize_error(
                ServiceError("InternalServerException", "Internal failure (sandbox fault injection)."), request_id
            )
        if fault == "deny":
            message = (
                f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/IncidentPortalSandboxRole/sandbox-session is not "
                f"authorized to perform: ssm-incidents:{operation.name} (sandbox fault injection)"
            )
            return protocol.serialize_error(ServiceError("AccessDeniedException", message), request_id)

        try:
            clean = protocol.validate(operation, params)
            result = self.emulator.handle(operation.name, clean)
            return protocol.serialize_response(operation, result, request_id)
        except ValidationFailed as failed:
            return protocol.serialize_error(ServiceError("ValidationException", str(failed)), request_id)
        except ServiceError as error:
            return protocol.serialize_error(error, request_id)
        except Exception as exc:  # a sandbox bug must still look like an AWS 500, not a dropped request
            logger.error("ssm-incidents %s failed:\n%s", operation.name, traceback.format_exc())
            bug = ServiceError("InternalServerException", f"Sandbox bug: {exc!r}")
            return protocol.serialize_error(bug, request_id)

    @staticmethod
    def _send(start_response, response: Response) -> list[bytes]:
        headers = list(response.headers.items()) + [("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {_reason(response.status)}", headers)
        return [response.body]

    # -- moto ----------------------------------------------------------------------------------------------

    def _moto(self, environ: dict[str, Any], start_response):
        method = environ["REQUEST_METHOD"]
        service = signing_service(environ) or "s3"
        entry = self.calls.record(
            service,
            f"{service}:{method}",
            {"path": environ.get("PATH_INFO", ""), "query": environ.get("QUERY_STRING", "")},
        )
        s3_down = self.faults.s3_down
        if s3_down and service == "s3":
            entry["fault"] = "s3_down"
            if s3_down == "connection":
                entry["status"] = "lost"
                raise DropConnection("sandbox fault: s3_down")
            entry["status"] = 503
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
                "<Message>S3 is down (sandbox fault injection).</Message>"
                f"<RequestId>{uuid.uuid4().hex.upper()[:16]}</RequestId></Error>"
            ).encode()
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]

        def recording_start_response(status, headers, exc_info=None):
            entry["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return self.moto_app(environ, recording_start_response)

    # -- control API ---------------------------------------------------------------------------------------

    def _control(self, environ: dict[str, Any], start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "").rstrip("/")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            raw = get_input_stream(environ).read()
            body = json.loads(raw) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _json_response(start_response, 400, {"error": f"body is not JSON: {exc}"})
        if not isinstance(body, dict):
            return _json_response(start_response, 400, {"error": "body must be a JSON object"})

        routes = {
            ("POST", "/_sandbox/reset"): lambda: self._reset(body),
            ("GET", "/_sandbox/faults"): self.faults.state,
            ("POST", "/_sandbox/faults"): lambda: self.faults.configure(body),
            ("DELETE", "/_sandbox/faults"): self._clear_faults,
            ("GET", "/_sandbox/calls"): lambda: {"calls": self.calls.list(query.get("operation", [None])[0])},
            ("DELETE", "/_sandbox/calls"): self._clear_calls,
            ("GET", "/_sandbox/state"): self.emulator.snapshot,
        }
        if path.startswith("/_sandbox/responder/"):
            return self._respond(method, path.removeprefix("/_sandbox/responder/"), body, start_response)
        if (method, path) == ("GET", "/_sandbox/health"):
            if self.ready.is_set():
                return _json_response(start_response, 200, {"ok": True})
            return _json_response(start_response, 503, {"ok": False, "starting": True})
        handler = routes.get((method, path))
        if handler is None:
            if any(route_path == path for _, route_path in routes):
                return _json_response(start_response, 405, {"error": f"{method} not allowed on {path}"})
            return _json_response(start_response, 404, {"error": f"unknown control endpoint {path}"})
        try:
            return _json_response(start_response, 200, handler())
        except ValueError as exc:
            return _json_response(start_response, 400, {"error": str(exc)})

    def _respond(self, method: str, action: str, body: dict[str, Any], start_response):
        """A responder's change in the console (sandbox/responder.py); errors as the service words them."""
        if method != "POST":
            return _json_response(start_response, 405, {"error": f"{method} not allowed; POST a responder's action"})
        try:
            return _json_response(start_response, 200, self.responder.act(action, body))
        except UnknownAction:
            return _json_response(start_response, 404, {"error": f"unknown responder action {action}"})
        except ValidationFailed as failed:
            return _json_response(start_response, 400, {"error": "ValidationException", "message": str(failed)})
        except ServiceError as error:
            status = self.protocol.serialize_error(error, "").status
            return _json_response(start_response, status, {"error": error.code, "message": error.message})

    def _reset(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.reset()
        self.faults.clear()
        self.calls.clear()
        s3 = bool(body.get("s3", False))
        if s3:
            self.reset_moto()
        return {"ok": True, "s3_reset": s3}

    def _clear_faults(self) -> dict[str, Any]:
        self.faults.clear()
        return self.faults.state()

    def _clear_calls(self) -> dict[str, Any]:
        self.calls.clear()
        return {"calls": []}


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# ---------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------


def _request_handler_class(*, quiet: bool):
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class SandboxRequestHandler(MotoRequestHandler):
        def connection_dropped(self, error, environ=None):
            # Close the socket now: with HTTP/1.1 keep-alive the base handler would otherwise wait for a
            # next request on it, and the client would hang until its read timeout instead of seeing the
            # connection closed without a response.
            self.close_connection = True

        def log_request(self, code="-", size="-"):
            if not quiet:
                super().log_request(code, size)

    return SandboxRequestHandler


class Sandbox:
    """The AWS sandbox: ``start()`` in a background thread (tests) or ``serve_forever()`` (CLI)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, quiet: bool = True):
        self.host = host
        self.port = port
        self.quiet = quiet
        self.emulator = IncidentsEmulator()
        self.faults = Faults()
        self.calls = CallLog()
        self.app = SandboxApp(self.emulator, self.faults, self.calls)
        # A responder acting in the console: changes the portal did not make (sandbox/responder.py).
        self.responder = self.app.responder
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> BaseWSGIServer:
        if self._server is None:
            # make_server binds and listens immediately, so the port is known (and connectable) on return.
            self._server = make_server(
                self.host, self.port, self.app, threaded=True, request_handler=_request_handler_class(quiet=self.quiet)
            )
            self.port = self._server.server_port
        return self._server

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104 -- only mapping it
        return f"http://{host}:{self._bind().server_port}"

    def start(self, ready: bool = True) -> Sandbox:
        """Serve in a daemon thread; returns once the socket is listening.

        With ``ready=False`` the health endpoint keeps answering 503 until ``mark_ready()`` (used while
        seeding demo data through the running server).
        """
        server = self._bind()
        if self._thread is None:
            self._thread = threading.Thread(target=server.serve_forever, name="aws-sandbox", daemon=True)
            self._thread.start()
        if ready:
            self.mark_ready()
        return self

    def mark_ready(self) -> None:
        self.app.ready.set()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (also fine after ``start()``)."""
        if self._thread is None:
            self.mark_ready()
            self._bind().serve_forever()  # werkzeug closes the socket on KeyboardInterrupt
            return
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server = None

    def reset(self, s3: bool = False) -> None:
        """Same as ``POST /_sandbox/reset``: forget all ssm-incidents state, faults and calls."""
        self.app._reset({"s3": s3})

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def run(
    host: str = "127.0.0.1",
    port: int = 4566,
    seed_demo: bool = False,
    bucket: str | None = None,
    out=None,
) -> None:
    """Start a sandbox in the foreground (used by ``python -m sandbox`` and ``manage.py sandbox``)."""
    from . import demo

    out = out or sys.stdout

    def say(line: str) -> None:
        out.write(line + "\n")  # explicit newline: Django's OutputWrapper would double print()'s
        out.flush()

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sandbox = Sandbox(host=host, port=port, quiet=False).start(ready=False)
    say(f"AWS sandbox listening on {sandbox.url} (ssm-incidents emulator, S3 via moto)")
    if seed_demo:
        arns = demo.seed(sandbox.url, bucket=bucket or demo.DEFAULT_BUCKET)
        say(
            f"Seeded {len(arns)} response plans, bucket {bucket or demo.DEFAULT_BUCKET} and the audit heads bucket "
            f"{demo.DEFAULT_HEADS_BUCKET} (Object Lock):"
        )
        for arn in arns:
            say(f"  {arn}")
    elif bucket:
        demo.create_bucket(sandbox.url, bucket)
        say(f"Created bucket {bucket}")
    # Moto's backends and botocore's models are ~10^5 objects kept for the server's life: out of the garbage
    # collector's walks, whose full collections otherwise paused every answer for ~0.1 s about once a minute under
    # the bench's load (AWS has no such pauses to imitate).
    gc.collect()
    gc.freeze()
    sandbox.mark_ready()
    say(
        f"Point clients at it with AWS_ENDPOINT_URL={sandbox.url} (any access key; region us-east-1). "
        f"Health: {sandbox.url}/_sandbox/health. Ctrl-C stops."
    )
    sandbox.serve_forever()
