# SPDX-License-Identifier: MIT OR Apache-2.0
"""The asyncio form of an event subscription: ``async for item in events``.

How it waits without blocking the loop: the subscription's netlink socket is
registered with the running loop (``loop.add_reader``), and when the loop
sees it readable, the items already queued are taken with ``Events.poll()``,
which never waits (it reads with ``MSG_DONTWAIT``; decoding a batch runs with
the interpreter released). No thread is involved, so there is nothing to
stop or join, cancellation is immediate (the reader is removed in a
``finally``), and it works on any loop that implements ``add_reader``
(the default selector loops and uvloop on Linux).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    from ._conntrack import Event, Events, ExpectationEvent
    from ._types import EventsLost

__all__ = ["AsyncEvents"]


def _wake(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)


class AsyncEvents:
    """Async iterator over an ``Events`` subscription (``async for item in
    events``): yields ``Event``, ``ExpectationEvent`` (when subscribed) and
    ``EventsLost`` items like the blocking iterator, ends when the
    subscription's ``timeout`` passes without an item or when it is closed."""

    __slots__ = ("_events",)

    def __init__(self, events: Events) -> None:
        self._events = events

    def __aiter__(self) -> AsyncEvents:
        return self

    async def __anext__(self) -> Union[Event, ExpectationEvent, EventsLost]:
        item = await self.get(self._events.timeout)
        if item is None:
            raise StopAsyncIteration
        return item

    async def get(
        self, timeout: Optional[float] = None
    ) -> Union[Event, ExpectationEvent, EventsLost, None]:
        """The next item, waiting up to ``timeout`` seconds (``None``: for
        ever) without blocking the loop; ``None`` when nothing came in time
        or the subscription is closed."""
        events = self._events
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if events.closed:
                return None
            item = events.poll()
            if item is not None:
                return item
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            fd = events.fileno()
            loop.add_reader(fd, _wake, waiter)
            try:
                await asyncio.wait((waiter,), timeout=remaining)
            finally:
                loop.remove_reader(fd)
                waiter.cancel()
