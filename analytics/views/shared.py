"""One started ingest per process, for notebooks and ``panel serve notebook.ipynb``.

In JupyterLab and under ``panel serve`` an event loop is already running: the ingest is
started on it as a task, and the views show "waiting for data" until the first rows
arrive. Every session (or re-run cell) asking for the same arguments gets the same ingest,
so one feed serves every viewer of the process.
"""

import asyncio
import logging

import panel as pn

from analytics.ingest import Ingest

LOG = logging.getLogger(__name__)


def _started(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOG.error("the ingest failed to start: %s", task.exception())


def live_ingest(source: str = "simulator", **options) -> Ingest:
    """The process's running :class:`~analytics.ingest.Ingest` for these arguments, started once.

    Parameters are those of :class:`~analytics.ingest.Ingest`. Outside a running loop (a
    plain script) the ingest is started on the thread's loop before this returns, and
    runs whenever that loop does (e.g. under ``pn.serve``).
    """
    key = ("tickscope-ingest", source, repr(sorted(options.items())))
    ingest = pn.state.cache.get(key)
    if ingest is None:
        ingest = Ingest(source=source, **options)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.get_event_loop_policy().get_event_loop().run_until_complete(ingest.start())
        else:
            loop.create_task(ingest.start()).add_done_callback(_started)
        pn.state.cache[key] = ingest
    return ingest
