"""Errors the CLI turns into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input: an unknown name, a malformed file, a missing runtime. The message is shown as is."""
