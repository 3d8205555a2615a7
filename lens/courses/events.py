"""What happens in the reader that features above care about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleCompleted:
    """A signed-in reader finished a module's required sections (once per module)."""

    user_id: int
    module_key: str
