"""Exported reports: a parameterised notebook over stored bars, written as one standalone HTML file.

- ``report.ipynb``: the report notebook (runs by itself in JupyterLab on simulated history);
- :mod:`~analytics.report.run`: :func:`make_report`, behind ``python -m analytics report``: checks
  the request, pins the data to an ArcticDB snapshot, runs the notebook, writes the file;
- :mod:`~analytics.report.selection`: what a report covers, checked against the store;
- :mod:`~analytics.report.execute`: papermill-style parameters and execution with progress;
- :mod:`~analytics.report.tables` and :mod:`~analytics.report.charts`: the numbers and the plots;
- :mod:`~analytics.report.stamp`: provenance and the command that reproduces a report;
- :mod:`~analytics.report.standalone`: saving with every resource inlined.
"""

from .run import Report, make_report

__all__ = ["Report", "make_report"]
