"""One writer per stored symbol: exclusive advisory locks on files in the store's folder.

A lock is taken (``flock``, non-blocking) the first time a process writes a symbol and is
held until the process ends or its last :class:`~analytics.storage.TickStore` on that
folder is garbage collected. Readers never lock. Only ``lmdb://`` stores have a folder to
lock in; other URIs (``mem://`` is private to a process, ``s3://`` has no shared lock)
are not locked.
"""

import fcntl
import os
import re
from pathlib import Path

from .errors import LockError


class SymbolLocks:
    """Exclusive write locks, one file per library and symbol under ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        Where the lock files live (created if missing).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._held: dict[tuple[str, str], int] = {}

    def path(self, library: str, symbol: str) -> Path:
        """The lock file of ``symbol`` in ``library``."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "~", symbol)
        return self.folder / f"{library}.{safe}.lock"

    def acquire(self, library: str, symbol: str) -> None:
        """Take the lock of ``symbol`` for this process, or fail at once.

        Raises
        ------
        LockError
            If another process (or another open store in this one) holds it.
        """
        if (library, symbol) in self._held:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(library, symbol)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockError(
                f"{library} {symbol} is being written by another process (lock {path}); "
                "stop that writer or use another store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held[(library, symbol)] = fd

    def held(self, library: str, symbol: str) -> bool:
        """Whether this object holds the lock of ``symbol``."""
        return (library, symbol) in self._held

    def try_acquire(self, library: str, symbol: str) -> bool:
        """Like :meth:`acquire`, returning False instead of raising."""
        try:
            self.acquire(library, symbol)
        except LockError:
            return False
        return True

    def release(self, library: str, symbol: str) -> None:
        """Release the lock of ``symbol`` if held."""
        fd = self._held.pop((library, symbol), None)
        if fd is not None:
            os.close(fd)

    def release_all(self) -> None:
        """Release every lock this object holds."""
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()

    def __del__(self):
        self.release_all()
