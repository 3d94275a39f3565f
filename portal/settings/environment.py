"""How every settings module reads the environment: django-environ's typed readers with the portal's rules."""

import os
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured


class Env(environ.Env):
    """django-environ's typed readers (env.int, env.bool, env.list…), each variable read as written: an empty one
    counts as unset, `$NAME` is not taken for another variable's name (a generated SECRET_KEY can begin with `$`),
    and a value that does not parse, or a required one that is missing, is reported with the variable's name."""

    def get_value(
        self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False
    ) -> Any:
        value = os.environ.get(var, "")
        if not value:
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"{var} must be set in the environment for this configuration.")
            if not parse_default:
                return default
            value = default
        try:
            # environ's own float reader keeps only digits, '.', ',' and '-': "1e3" would read as 13, "30s" as 30.
            parsed = float(value) if cast is float else self.parse_value(value, cast)
        except ValueError as error:
            what = {int: "a whole number", float: "a number"}.get(cast, "valid")
            raise ImproperlyConfigured(f"{var} must be {what}, got {value!r}") from error
        # A list's blank items ("txt, ,pdf", a trailing comma) are no items: an empty extension would let files
        # without one through, an empty host name would match nothing.
        return [item for item in parsed if item != ""] if isinstance(parsed, list) else parsed


env = Env()
