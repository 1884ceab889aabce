"""Opening ArcticDB: the store's layout, URI handling and the per-process shared backend.

All stores opened on one ``lmdb://`` folder in a process share one ArcticDB instance
(LMDB must not be opened twice by a process), one tail cache, one mutex and one set of
write locks; the backend goes away with the last store that uses it.
"""

import threading
import weakref
from pathlib import Path

import arcticdb
import arcticdb.config

from .dedup import Tail
from .errors import StoreError, one_line
from .locks import SymbolLocks

KINDS = ("trades", "quotes", "bars")
KEYS = {"trades": ["exchange", "symbol"], "quotes": ["exchange", "symbol"], "bars": ["exchange", "symbol", "timeframe"]}
INDEX = {"trades": "timestamp", "quotes": "timestamp", "bars": "start"}
DEFAULT_FOLDER = Path("data") / "arctic"

# LMDB's MDB_NOMETASYNC: one fsync per commit instead of two. The database stays
# consistent; a crash of the whole machine may undo the last commit (SQLite's WAL with
# synchronous=NORMAL makes the same trade). A crash of the process loses nothing.
MDB_NOMETASYNC = 0x40000


class Backend:
    """What every TickStore on one URI in this process shares."""

    def __init__(self, uri: str, folder: Path | None):
        if folder is not None:
            arcticdb.config.set_config_int("LMDBStorage.ExtraFlags", MDB_NOMETASYNC)
        self.arctic = arcticdb.Arctic(uri)
        self.libraries = {kind: self.arctic.get_library(kind, create_if_missing=True) for kind in KINDS}
        self.tails: dict[tuple[str, str], Tail] = {}
        self.locks = SymbolLocks(folder / "_locks") if folder is not None else None
        self.mutex = threading.RLock()


_BACKENDS: "weakref.WeakValueDictionary[str, Backend]" = weakref.WeakValueDictionary()
_BACKENDS_LOCK = threading.Lock()


def open_backend(uri: str | None) -> tuple[str, Backend]:
    """Resolve ``uri`` and return it with its (shared, for lmdb) backend."""
    if uri is None:
        uri = f"lmdb://{DEFAULT_FOLDER}"
    if not isinstance(uri, str) or "://" not in uri:
        raise StoreError(f"invalid store URI {uri!r}: expected e.g. lmdb:///path, mem://, s3://...")
    folder = None
    if uri.startswith("lmdb://"):
        path, _, query = uri[len("lmdb://") :].partition("?")
        folder = Path(path or DEFAULT_FOLDER).resolve()
        uri = f"lmdb://{folder}" + (f"?{query}" if query else "")
    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(uri) if folder is not None else None
        if backend is None:
            try:
                if folder is not None:
                    folder.mkdir(parents=True, exist_ok=True)
                backend = Backend(uri, folder)
            except Exception as error:
                raise StoreError(f"cannot open store {uri}: {one_line(error)}") from None
            if folder is not None:
                _BACKENDS[uri] = backend
    return uri, backend
