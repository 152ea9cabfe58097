"""Waiting for a condition with a deadline: the one poll loop of the project (servers, runs, jobs, locks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(condition: Callable[[], T], *, timeout_s: float, interval_s: float) -> T:
    """Call `condition` every `interval_s` seconds until it returns something true, and return that; when
    `timeout_s` have passed first, its last (false) answer. It is always called at least once."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(interval_s)
    return result


def wait_until(condition: Callable[[], T], *, timeout_s: float, interval_s: float, what: str | Callable[[], str],
               ignore: tuple[type[Exception], ...] = ()) -> T:
    """`poll_until`, or TimeoutError naming `what` (a text, or a function giving it: it may tell the last
    state seen). An exception of a type in `ignore` counts as a false answer (the last one is the
    TimeoutError's cause); any other ends the wait."""
    last_error: Exception | None = None

    def attempt():
        nonlocal last_error
        try:
            return condition()
        except ignore as exc:
            last_error = exc
            return None

    if result := poll_until(attempt, timeout_s=timeout_s, interval_s=interval_s):
        return result
    raise TimeoutError(f"gave up waiting for {what() if callable(what) else what} after {timeout_s:g}s") from last_error
