"""Waiting in tests without sleeping for a fixed time: poll a condition until a deadline."""

import asyncio
import time


async def poll(condition, timeout: float = 20.0, what: str = "the condition") -> None:
    """Return once ``condition()`` is true; fail after ``timeout`` seconds, naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
