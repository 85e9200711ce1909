"""The one exception type that the CLI turns into a one-line message instead of a traceback."""


class EcmaError(Exception):
    """A problem with the user's input (a file, a config value, a video), named in the message.

    Raise it with a message that names the file or item at fault and the problem, in one line.
    """
