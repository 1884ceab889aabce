"""Errors of the tick store: all are ``ValueError``s with a one-line message."""


class StoreError(ValueError):
    """The store cannot be opened or written (the CLI exits with code 2)."""


class LockError(StoreError):
    """Another process holds the write lock of a symbol."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """The first line of ``error``'s message, cut to ``limit`` characters."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = lines[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
