"""Work every session would repeat, done once per process: objects shared by key and counted by user."""

import threading


class Shared:
    """An object of the process shared by the sessions asking for the same key.

    :meth:`share` returns the key's object (made on first use) with one more user counted;
    :meth:`release` counts one fewer, and the last one forgets the object and calls
    :meth:`close`, which closes the hub cursors in ``_cursors``. Each subclass keeps its own
    objects.
    """

    _registry = threading.Lock()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._shared = {}

    @classmethod
    def share(cls, key, make):
        """The object of ``key`` (``make()`` on first use), one more user counted."""
        with cls._registry:
            shared = cls._shared.get(key)
            if shared is None:
                shared = cls._shared[key] = make()
                shared.key, shared.users = key, 0
            shared.users += 1
            return shared

    def release(self) -> None:
        """One user fewer; the last one closes the object."""
        with self._registry:
            self.users -= 1
            if self.users <= 0 and self._shared.get(self.key) is self:
                del self._shared[self.key]
                self.close()

    def close(self) -> None:
        """Close the hub cursors."""
        for cursor in self._cursors:
            cursor.close()
