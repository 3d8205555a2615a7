"""Breakout rooms without a table: a room's name says which voice channel it belongs to.

`breakout-<main channel id>-<k>`: after a restart the bot finds its rooms on the server
by name, so nothing about them has to be remembered anywhere else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TypeVar

from lens.errors import Invalid

PREFIX = "breakout-"
_NAME = re.compile(r"^breakout-(\d{1,20})-(\d{1,3})$")

T = TypeVar("T")


def room_name(main_channel_id: int, number: int) -> str:
    return f"{PREFIX}{main_channel_id}-{number}"


def parse_room_name(name: str) -> tuple[int, int] | None:
    """(main channel id, room number) for a breakout room's name; None for any other."""
    match = _NAME.match(name)
    return (int(match[1]), int(match[2])) if match else None


def plan_rooms(people: Sequence[T], size: int) -> list[list[T]]:
    """Deal people round-robin into the fewest rooms of at most `size`.

    Rooms differ by at most one person: 7 people in rooms of 3 make 3, 2 and 2, not
    3, 3 and 1.
    """
    if size < 1:
        raise Invalid("A room needs room for at least one person.")
    count = math.ceil(len(people) / size)
    rooms: list[list[T]] = [[] for _ in range(count)]
    for index, person in enumerate(people):
        rooms[index % count].append(person)
    return rooms
