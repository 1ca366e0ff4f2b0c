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


def check_count(name: str, value: object, minimum: int = 1) -> None:
    """Refuse a count parameter (a batch size, a number of draws) that is not an integer ``>= minimum``.

    ``None`` passes (the caller's default). The message names the parameter as
    `` `name` ``, which the CLI shows as its flag.

    Examples
    --------
    >>> check_count("batch_size", 64)
    >>> check_count("batch_size", 0)
    Traceback (most recent call last):
    ...
    genocnn.errors.GenocnnError: `batch_size` must be an integer >= 1, got 0
    """
    import operator

    if value is None:
        return
    try:
        ok = not isinstance(value, bool) and operator.index(value) >= minimum
    except TypeError:
        ok = False
    if not ok:
        raise GenocnnError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
