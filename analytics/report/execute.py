"""Run a parameterised notebook the way papermill does, in a fresh kernel of this interpreter.

:func:`parameterise` inserts a cell tagged ``injected-parameters`` after the cell tagged
``parameters``; :func:`execute` runs every cell with nbclient, reporting each code cell by its
title, and turns a failing cell into a one-line :class:`CellError`.
"""

import atexit
import logging
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm import tqdm
from traitlets import default

QUIET = logging.getLogger("analytics.report.kernel")  # nbclient and jupyter_client talk at INFO
QUIET.setLevel(logging.CRITICAL)


class NativeKernelManager(KernelManager):
    """A kernel manager for this interpreter's own ipykernel, whatever kernels the user has installed."""

    @default("kernel_spec_manager")
    def _native_only(self):
        return KernelSpecManager(kernel_dirs=[])

    @default("log")
    def _quiet(self):
        return QUIET


class CellError(Exception):
    """A cell of the notebook failed (the CLI exits with code 1)."""


def parameterise(notebook: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with ``parameters`` assigned in a cell after its ``parameters`` cell.

    Raises
    ------
    ValueError
        If no cell is tagged ``parameters``.
    """
    nb = nbformat.from_dict(notebook)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    if not tagged:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    cell = nbformat.v4.new_code_cell("# Parameters (injected)\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, cell)
    return nb


def title(notebook: nbformat.NotebookNode, index: int) -> str:
    """What to call code cell ``index``: its first line if a comment, else the last heading above it."""
    first = notebook.cells[index].source.strip().splitlines()[:1]
    if first and first[0].startswith("#"):
        return first[0].lstrip("# ").strip()
    for cell in reversed(notebook.cells[:index]):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            return cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
    return f"cell {index}"


class Progress:
    """Progress over a notebook's code cells on stderr: a bar on a terminal, else one line a cell."""

    def __init__(self, notebook: nbformat.NotebookNode, stream=None):
        self.notebook, self.stream = notebook, stream or sys.stderr
        self.cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.source.strip()]
        self.tty = self.stream.isatty()
        self.bar = tqdm(total=len(self.cells), file=self.stream, disable=not self.tty, unit="cell",
                        bar_format="{desc:<32.32} {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}]")
        self.bar.set_description_str("starting the kernel")

    def start(self, cell_index: int) -> None:
        name = title(self.notebook, cell_index)
        self.bar.set_description_str(name)
        if not self.tty:
            position = self.cells.index(cell_index) + 1 if cell_index in self.cells else "?"
            print(f"report: [{position}/{len(self.cells)}] {name}", file=self.stream, flush=True)

    def done(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def execute(notebook: nbformat.NotebookNode, cwd: Path, progress: bool = True, timeout: float = 600,
            failed: Path | None = None) -> dict:
    """Execute ``notebook`` in place in a fresh kernel of this interpreter, in ``cwd``.

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        A parameterised notebook (see :func:`parameterise`).
    cwd : pathlib.Path
        The kernel's working directory.
    progress : bool
        Report each code cell on stderr.
    timeout : float
        Seconds a cell may run.
    failed : pathlib.Path, optional
        Where to keep the executed notebook if a cell fails.

    Returns
    -------
    dict
        Seconds spent starting the kernel (``"kernel start"``) and running each code cell, by title.

    Raises
    ------
    CellError
        One line naming the cell and the error (and where the failed notebook was kept).
    """
    shown = Progress(notebook) if progress else None
    clock = {"index": None, "began": time.monotonic()}
    timings = {}

    def on_start(notebook):
        timings["kernel start"] = time.monotonic() - clock["began"]

    def on_execute(cell, cell_index):
        clock.update(index=cell_index, began=time.monotonic())
        if shown:
            shown.start(cell_index)

    def on_executed(cell, cell_index, execute_reply):
        timings[title(notebook, cell_index)] = time.monotonic() - clock["began"]
        if shown:
            shown.done()

    client = NotebookClient(notebook, kernel_manager_class=NativeKernelManager, kernel_name="python3", log=QUIET,
                            timeout=timeout, resources={"metadata": {"path": str(cwd)}}, on_notebook_start=on_start,
                            on_cell_execute=on_execute, on_cell_executed=on_executed)
    log = tempfile.TemporaryFile()  # the kernel's stderr: its warnings, and why it died if it did
    try:
        client.execute(stderr=log)  # cell errors come as messages
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        index = clock["index"]
        where = f"cell {index} ({title(notebook, index)!r})" if index is not None else "the kernel"
        detail = f"{error.ename}: {error.evalue}" if isinstance(error, CellExecutionError) else type(error).__name__
        detail = (detail.strip().splitlines() or [""])[0][:300]
        kept = ""
        if failed is not None:
            nbformat.write(notebook, failed)
            kept = f" (executed notebook kept in {failed})"
        raise CellError(f"{where} failed: {detail}{kept}") from None
    except (NoSuchKernel, RuntimeError, TimeoutError) as error:  # the kernel did not start
        atexit.unregister(client._cleanup_kernel)  # nbclient cleaned up already, but left its exit hook
        log.seek(0)
        said = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
        raise CellError(f"the kernel did not start: {(said or [str(error)])[-1].strip()[:300]}") from None
    finally:
        log.close()
        if shown:
            shown.close()
    return timings
