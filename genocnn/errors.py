"""The one user-facing error type of genocnn."""

from __future__ import annotations


class GenocnnError(Exception):
    """A user mistake: bad input file, bad config, unusable run directory.

    The message names the file and, where it helps, the record or line.
    The CLI prints it on one line and exits with status 2.
    """


def as_flags(message: str, flags: dict[str, str] | None = None) -> str:
    """Rewrite the parameter names of a library message (written as `` `name` ``) as CLI flags.

    The library speaks in parameters (``bed``, ``valid_chroms``); the command
    line speaks in flags (``--bed``, ``--valid-chroms``). ``flags`` maps the
    names whose flag is spelt differently.

    Examples
    --------
    >>> as_flags("`bed` and `genome` go together")
    '--bed and --genome go together'
    >>> as_flags("`overrides` item 'x': expected section.key=value", {"overrides": "--set"})
    "--set item 'x': expected section.key=value"
    """
    import re

    flags = flags or {}
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: flags.get(m[1], "--" + m[1].replace("_", "-")), message)
