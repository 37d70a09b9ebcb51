"""Errors darbgen raises on bad input.

Every error a user can cause (a bad file, a bad array, an impossible request)
is a :class:`DarbgenError`. It subclasses :class:`ValueError`, so code that
already catches ``ValueError`` keeps working, and its message names the array
or layer at fault and says how to fix it. The command line prints the message
on one line and exits with status 2 instead of showing a traceback.
"""


class DarbgenError(ValueError):
    """Bad input or an impossible request; the message says what to change."""
