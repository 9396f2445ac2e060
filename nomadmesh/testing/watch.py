"""Watch keys: how a write tells exactly the blocking queries and watchers that read it.

A write names the keys it touched (a table, one object, one index entry); `Watches.fire`
records the index of that write for each key and calls the subscribers of those keys only.
A waiter subscribes first and then checks `fired_since(keys, seen)`, so a write that lands
between its read and its subscription is never missed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

WatchKey = tuple[Any, ...]
ANY: WatchKey = ("*",)  # subscribers of ANY hear every write


class Watches:
    """Who waits for which watch keys; a commit calls the callbacks of the keys it touched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[WatchKey, dict[int, Callable[[], None]]] = {}
        self._fired: dict[WatchKey, int] = {}
        self._next = 0
        self.calls = 0  # callbacks called so far (how many waiters writes have woken)

    def subscribe(self, keys: Iterable[WatchKey], callback: Callable[[], None]) -> int:
        """Call `callback` (from the committing thread; keep it quick) when a key is touched."""
        with self._lock:
            self._next += 1
            token = self._next
            for key in keys:
                self._subscribers.setdefault(key, {})[token] = callback
            return token

    def unsubscribe(self, token: int, keys: Iterable[WatchKey]) -> None:
        """Forget a subscription."""
        with self._lock:
            for key in keys:
                subscribers = self._subscribers.get(key)
                if subscribers is not None:
                    subscribers.pop(token, None)
                    if not subscribers:
                        del self._subscribers[key]

    def waiting(self, key: WatchKey) -> int:
        """How many subscribers wait on a key (parked blocking queries, watchers)."""
        with self._lock:
            return len(self._subscribers.get(key, {}))

    def subscribed(self) -> int:
        """How many subscriptions are open (blocking queries parked), over all keys."""
        with self._lock:
            return sum(len(subscribers) for subscribers in self._subscribers.values())

    def fired_since(self, keys: Iterable[WatchKey], index: int) -> bool:
        """Whether one of the keys was touched by a commit after `index`."""
        with self._lock:
            return any(self._fired.get(key, 0) > index for key in keys)

    def fire(self, keys: Iterable[WatchKey], index: int) -> None:
        """Record the commit at `index` and call every subscriber of its keys once."""
        callbacks: dict[int, Callable[[], None]] = {}
        with self._lock:
            for key in keys:
                self._fired[key] = index
                callbacks.update(self._subscribers.get(key, {}))
            callbacks.update(self._subscribers.get(ANY, {}))
            self.calls += len(callbacks)
        for callback in callbacks.values():
            callback()
