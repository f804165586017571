"""Error type for bad dataset files and folders."""


class DataError(ValueError):
    """A dataset file or folder is missing, unreadable or malformed.

    The message always starts with the offending path, then says what is wrong and, where
    possible, how to fix it. Subclass of ValueError so callers that catch ValueError still work.
    """

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)
