"""One error type for bad user input, so the CLI can print it as a single line and exit non-zero."""


class InputError(ValueError):
    """Bad input: the message names the file, the frame or keyframe, and the field."""
