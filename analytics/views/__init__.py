"""Panel Viewers shared by the served app and the notebooks.

The only sub-package of ``analytics`` that imports Panel. Each Viewer takes the
:class:`analytics.ingest.Ingest` it shows; in a served app, every session reads the one
shared ingest through the hub and releases what it created when the session closes.
"""

from analytics.views.banner import banner
from analytics.views.board import PriceBoard
from analytics.views.chart import CandleChart
from analytics.views.exchanges import CrossExchange
from analytics.views.health import FeedHealth
from analytics.views.risk import RiskDashboard
from analytics.views.sentiment import SentimentView
from analytics.views.shared import live_ingest

__all__ = ["CandleChart", "CrossExchange", "FeedHealth", "PriceBoard", "RiskDashboard", "SentimentView", "banner",
           "live_ingest"]
