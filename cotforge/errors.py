"""The base of every error cotforge raises for the user: the message says what went wrong and what to do."""


class CotforgeError(RuntimeError):
    """An error whose message is written for the user; the CLI prints it without a traceback."""
