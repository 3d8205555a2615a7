from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from lens.errors import IntegrationUnavailable
from lens.integrations.llm.client import Delta, Event, Usage


@dataclass
class FakeModel:
    """A scripted ChatModel: records what it was asked, answers word by word."""

    name: str = "fake/tutor"
    words: list[str] = field(default_factory=lambda: ["Good ", "question", "!"])
    fail_after: int | None = None  # raise after this many words
    fail_with: Exception | None = None  # what it raises then (default: the vendor is down)
    delay: float = 0.0
    calls: list[dict] = field(default_factory=list)
    cancelled: int = 0
    prepared: int = 0  # times told a reply is coming
    ceiling_usd: float = 0.0  # the most a reply may cost (0: free, as unknown models)

    def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        return self.ceiling_usd

    def prepare(self) -> None:
        self.prepared += 1

    async def send_ahead(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> None:
        return None  # nothing sent ahead: `stream` is the whole exchange

    async def stream(
        self,
        *,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        ahead: object = None,
    ) -> AsyncIterator[Event]:
        self.calls.append({"system": system, "messages": messages, "max_tokens": max_tokens})
        try:
            for i, word in enumerate(self.words):
                if self.fail_after is not None and i == self.fail_after:
                    raise self.fail_with or IntegrationUnavailable("provider broke")
                await asyncio.sleep(self.delay)
                yield Delta(word)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield Usage(prompt_tokens=100, completion_tokens=len(self.words), cost_usd=0.002)
