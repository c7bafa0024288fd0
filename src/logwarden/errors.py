"""The errors logwarden raises, one hierarchy for the whole package.

    LogwardenError                 anything logwarden raises on purpose
    ├── UsageError                 the command line asks for something impossible (exit 2)
    │   └── config.errors.ConfigError    a config file is wrong; every problem, with file:line
    ├── RuleError                  a rule file is wrong; carries file:line:column
    ├── InputError                 an input cannot be opened or read at all
    │   └── ledger.layout.LedgerError    a ledger cannot be opened, written or read
    └── ledger.note.NoteError        a signed note or key is malformed or forged

A malformed *record* (one bad line in a log file) is not an exception that escapes: the
source reports it through `logwarden.rejects.Rejects`, counts it and goes on. Third-party
exceptions (YAML, msgspec, OS errors) are translated at the module boundary with
`raise ... from exc`, so callers only ever catch these classes. Errors that belong to one
concern live in its module and subclass these (listed above with their module).
"""

from __future__ import annotations

__all__ = ["InputError", "LogwardenError", "RuleError", "UsageError"]


class LogwardenError(Exception):
    """Base class of every error logwarden raises on purpose."""


class UsageError(LogwardenError):
    """The command line or an argument is not usable."""


class InputError(LogwardenError):
    """An input file, directory or stream cannot be opened or read."""


class RuleError(LogwardenError):
    """A rule file is wrong. The message names file:line:column and what is wrong."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int = 0, column: int = 0
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        if self.file is None:
            return self.reason
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return f"{where}: {self.reason}"
