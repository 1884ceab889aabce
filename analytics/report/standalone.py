"""One HTML file that opens offline: Bokeh and Panel JavaScript, CSS and icons inlined.

``pn.Column(...).save(path, resources=INLINE)`` inlines the JavaScript but leaves Panel's
stylesheets (``loading.css``, the design's theme, each pane's CSS) and the page icons as links
to ``cdn.holoviz.org``. :func:`save` builds the Bokeh models in Panel's ``inline`` resource mode
and swaps every such link for the stylesheet's text, as Panel does for notebooks with
``pn.extension(inline=True)``; the icon becomes a data URI.
"""

import json
import re
from pathlib import Path

from bokeh.document import Document
from bokeh.models import UIElement
from bokeh.resources import INLINE
from panel.io.notebook import patch_inline_stylesheets
from panel.io.resources import set_resource_mode
from panel.io.save import save as save_html

ICON = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
        "%3Crect x='3' y='4' width='4' height='8' fill='%2326a69a'/%3E"
        "%3Crect x='9' y='2' width='4' height='10' fill='%23ef5350'/%3E%3C/svg%3E")
# Things a page fetches by itself: <script src>, <link href>, CSS url()/@import, Bokeh stylesheet models.
_FETCHED = [
    re.compile(r"<script[^>]*\ssrc\s*=\s*[\"']?([^\"'\s>]+)", re.I),
    re.compile(r"<link[^>]*\shref\s*=\s*[\"']?([^\"'\s>]+)", re.I),
    re.compile(r"@import\s+(?:url\()?[\"']?(https?:[^\"')\s;]+)", re.I),
    re.compile(r"@font-face[^}]*url\([\"']?(https?:[^\"')\s]+)", re.I),
]


def save(layout, path, title: str) -> Path:
    """Save a Panel object as one standalone HTML file.

    Parameters
    ----------
    layout : panel.viewable.Viewable
        What to save (static: no server callbacks).
    path : str or pathlib.Path
        The file to write; a name not ending in ``.html`` gets that suffix (Panel's rule).
    title : str
        The page title.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    doc = Document()
    with set_resource_mode("inline"):
        root = layout.get_root(doc)
    for model in root.select({"type": UIElement}):
        patch_inline_stylesheets(model)
    doc.add_root(root)
    doc.title = title
    save_html(doc, str(path), title=title, resources=INLINE,
              template_variables={"app_favicon": ICON, "apple_icon": ICON})
    return Path(path if str(path).endswith(".html") else f"{path}.html")


def _documents(html: str) -> list:
    """The Bokeh documents embedded in a saved page, as JSON."""
    found = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    return [json.loads(text) for text in found]


def external_references(html: str) -> list[str]:
    """Addresses a saved page would fetch from the network as it loads: scripts, stylesheets, fonts, icons.

    URLs merely written inside inlined JavaScript (licences, optional loaders) do not count.
    """
    found = {match for pattern in _FETCHED for match in pattern.findall(html)}

    def walk(node):
        if isinstance(node, dict):
            if node.get("name") == "ImportedStyleSheet":
                found.add(node.get("attributes", {}).get("url", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in _documents(html):
        walk(doc)
    return sorted(url for url in found if not url.startswith("data:"))
