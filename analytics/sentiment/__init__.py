"""Sentiment of crypto news and social text, per coin.

- :mod:`.scoring`: VADER scores (nltk's analyzer, the vaderSentiment wheel's lexicon, a crypto
  vocabulary and phrase rules from :mod:`.lexicon`) and positive/neutral/negative labels.
- :mod:`.coins`: which coins a text is about.

Importing the package loads no lexicon; the analyzer is built on first use.
"""

from .coins import COINS, tag_coins, tag_many
from .scoring import NEGATIVE, POSITIVE, THRESHOLD, analyzer, label, normalize, score, scores

__all__ = ["COINS", "NEGATIVE", "POSITIVE", "THRESHOLD", "analyzer", "label", "normalize", "score", "scores",
           "tag_coins", "tag_many"]
