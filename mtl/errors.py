"""Errors a user can act on. Each says what is wrong and where (file, line, field), never a deep traceback."""


class MtlError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2."""


class ConfigError(MtlError):
    """A config key, value or combination of options is invalid."""


class DataError(MtlError):
    """A data file cannot be read as records: the message names the file, line (or CSV row) and field."""

    def __init__(self, path, line: int | None, field: str | None, problem: str):
        where = str(path)
        if line is not None:
            where += f":{line}"
        if field:
            where += f": field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = str(path), line, field, problem


class LeakageError(MtlError):
    """A CV split put one group (query, category group, language) in more than one fold."""


class CheckpointError(MtlError):
    """A saved model or checkpoint is incomplete or does not match the config it is used with."""


class Interrupted(MtlError):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint (the CLI exits with 130)."""
