"""Errors a user can cause and fix. The CLI prints their message without a traceback."""


class DeeppotError(Exception):
    """Base class: the message says what is wrong and what to change."""


class ConfigError(DeeppotError):
    """A problem in input.json; the message names the JSON path."""


class DataError(DeeppotError):
    """A problem in a data system; the message names the file."""


class ModelFileError(DeeppotError):
    """A missing or unreadable model or checkpoint file."""


class OptionError(DeeppotError):
    """A command-line option with a value that cannot work; the message names the option."""


class TrainingDiverged(DeeppotError):
    """The loss became NaN or inf; training stopped before the weights were updated with it."""


class DistributedError(DeeppotError):
    """Data-parallel training lost a process (crashed, killed, or its machine went away) or cannot start."""
