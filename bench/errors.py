"""Errors the CLI turns into one line on stderr and exit code 2."""

from backends.errors import BackendError
from models.errors import ModelError


class UserError(Exception):
    """Bad input: an unknown name, a malformed file, a missing runtime. The message is shown as is."""


# every layer's bad-input error: the CLI maps each to one line on stderr and exit code 2
USER_ERRORS: tuple[type[Exception], ...] = (UserError, BackendError, ModelError)
