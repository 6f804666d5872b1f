"""The error a backend raises for bad input (an unknown name or option): the CLI shows it as one line, exit 2."""


class BackendError(Exception):
    """Bad input to a backend: an unknown backend, an invalid option. The message is shown as is."""
