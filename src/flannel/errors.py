"""The errors the workflow expects (bad config, bad data, bad recordings, failed training): their messages
name the file or key, and scripts print them as one line instead of a traceback."""


class FlannelError(Exception):
    """Base of every expected error."""
