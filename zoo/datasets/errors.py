"""The data layer's user-facing errors and warnings.

Bad input (a missing folder, an unreadable image, a corrupt annotation file, a dataset no
source can provide) raises a `DataError`: a `ValueError` whose first line names the file or
folder and says what is wrong with it, so that a command line can print that one line
(`error.summary`) and exit with `DataError.exit_code` (2, as argparse does for bad
arguments) instead of a traceback:

    try:
        data = load_voc(path)
    except DataError as error:
        print(f"prog: error: {error.summary}", file=sys.stderr)
        return error.exit_code

A missing file or folder raises `DataNotFound`, which is also a `FileNotFoundError`, so
older `except FileNotFoundError` code keeps working.
"""

from __future__ import annotations

import os


class DataError(ValueError):
    """A problem with the user's data; `str()` is one line that names the file or folder.

    Args:
        message: what is wrong, naming the file or folder (newlines are folded into one
            line).
        path: the file or folder at fault, kept as `error.path`; prefixed to the message
            when the message does not already name it. Defaults to None.
    """

    exit_code = 2

    def __init__(self, message, path=None):
        message = " ".join(str(message).split("\n"))
        if path is not None and os.fspath(path) not in message:
            message = f"{os.fspath(path)}: {message}"
        super().__init__(message)
        self.path = path

    @property
    def summary(self) -> str:
        """The first line of the message (the whole message for a plain `DataError`)."""
        return str(self).split("\n", 1)[0]


class DataNotFound(DataError, FileNotFoundError):
    """A file or folder the data needs does not exist."""


class TruncatedImageWarning(UserWarning):
    """An image file ends early; what it holds was loaded and the rest filled in."""
