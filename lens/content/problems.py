"""What the validator tells an author: one problem per thing to look at.

Two levels. An *error* means the file cannot be served (a module without a slug, a
segment that cannot be read); a *warning* means it is served, but the author should look
(an unknown field, a link to a file not written yet, an image that is missing). A file's
errors never take down another file: whatever links it is served without it, with a
warning saying so. Each problem names its rule (see docs/content-format.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["error", "warning"]
ERROR: Level = "error"
WARNING: Level = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """Printed as `path:line: level: message (in context) [rule]`."""

    path: str
    line: int
    context: str
    message: str
    level: Level = ERROR
    rule: str = ""

    @property
    def is_error(self) -> bool:
        return self.level == ERROR

    def __str__(self) -> str:
        where = f" (in {self.context})" if self.context else ""
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{self.path}:{self.line}: {self.level}: {self.message}{where}{rule}"
