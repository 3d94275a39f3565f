"""The portal's one error type for expected failures, which every interface translates (form error, HTTP status,
JSON envelope)."""


class PortalError(Exception):
    """Something a person or a script asked for cannot be done; `message` says why in plain words.

    `code` lets an interface choose its answer ("invalid", "conflict", "forbidden", "not_found", "unauthenticated",
    …); `field` names the input at fault, when there is one.
    """

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
