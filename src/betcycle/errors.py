"""One base error and the user-facing error type the CLI turns into `path:line: message` + hint, exit 2."""

from __future__ import annotations

from pathlib import Path


class BetcycleError(Exception):
    """Base of every error BetCycle raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # picklable with every attribute, whatever the subclass's __init__ takes: errors found in a worker
        # process (render --jobs) come back to the parent intact
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[BetcycleError], args: tuple[object, ...], state: dict[str, object]) -> BetcycleError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class UserError(BetcycleError):
    """Bad input or usage: printed as one line naming the file (and line) plus a hint; exit code 2."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint

    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        loc = self.location()
        text = f"{loc}: {self.message}" if loc else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UserErrors(BetcycleError):
    """Several bad inputs found in one pass; all are reported before exiting 2."""

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__(f"{len(errors)} input errors")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def raise_collected(errors: list[UserError]) -> None:
    """Raise what a pass collected: nothing, the one error as it is, or all of them together."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise UserErrors(errors)
