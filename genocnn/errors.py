"""The one user-facing error type of genocnn."""

from __future__ import annotations


class GenocnnError(Exception):
    """A user mistake: bad input file, bad config, unusable run directory.

    The message names the file and, where it helps, the record or line.
    The CLI prints it on one line and exits with status 2.
    """
