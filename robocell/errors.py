"""Errors that reach the user as a one-line message and a non-zero exit, never a traceback."""


class RobocellError(Exception):
    """A problem with the user's input (config, file, argument): the message names it."""

    exit_code = 2


class VerificationError(RobocellError):
    """A certificate, bundle or ledger failed a check; the message says which one."""

    exit_code = 1
