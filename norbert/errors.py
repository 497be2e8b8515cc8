"""The one exception type that scripts turn into a one-line message and a non-zero exit."""


class NorbertError(ValueError):
    """Bad input or settings. The message names the file or flag and says how to fix it."""
