"""The one error type users see: a one-line message, printed without a traceback by the CLIs."""


class QuantizeGraphError(Exception):
    """A problem with the user's input (graph, flags, files), reported as one line."""
