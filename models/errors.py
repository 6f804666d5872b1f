"""The errors of the model layer: bad input (the CLI shows it as one line, exit 2), a variant the model cannot have."""


class ModelError(Exception):
    """Bad input to the model layer: an unknown model or variant, a malformed file. The message is shown as is."""


class NotApplicable(Exception):
    """A variant this model cannot have, found only while building it (e.g. the model does not run in fp16): its
    jobs are `skipped` with this message, never measured or failed."""
