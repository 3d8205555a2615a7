from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing an author must fix, printed as `path:line: context: message`."""

    path: str
    line: int
    context: str
    message: str

    def __str__(self) -> str:
        if self.context:
            return f"{self.path}:{self.line}: {self.context}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"
