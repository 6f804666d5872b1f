"""The error the model layer raises for bad input: the CLI shows it as one line, exit 2."""


class ModelError(Exception):
    """Bad input to the model layer: an unknown model or variant, a malformed file. The message is shown as is."""
