"""Errors of models/ that mean bad input: the CLI prints the message as one line and exits 2."""


class ModelInputError(Exception):
    """A user's model, model file or input spec that recbench cannot use; the message says why and what to do."""
