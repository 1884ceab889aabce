"""Sentiment benchmark: ``analytics.sentiment.score`` and ``tag_many`` throughput on one core, one run.

Two corpora of at least ``--texts`` items (20,000 by default), repeated from real text:

- headlines: the labelled crypto headlines of tests/data (both files, 247), repeated;
- tweets: the 4,200 human-rated tweets of ../shared/data/sentiment (longer, informal), repeated.

On each: ``score(texts)`` (our normalisation + nltk VADER with the crypto lexicon, one Series out)
against the baseline of stock nltk VADER, ``SentimentIntensityAnalyzer.polarity_scores`` called in a
Python loop over the raw texts with the wheel's lexicon; and ``tag_many(texts)``. The process is
pinned to one CPU. Times are the best of ``--repeat`` runs after a warm-up; the first call of
``analyzer()`` (reading the lexicon) is reported on its own.

    python bench/sentiment.py [--texts 20000] [--repeat 3] [--json]

Target (issue 5): score() >= 5,000 headlines/s on one core.
"""

import argparse
import csv
import gzip
import json
import os
import sys
import time
from pathlib import Path

import nltk
import vaderSentiment
from nltk.sentiment.vader import SentimentIntensityAnalyzer

sys.path.insert(0, str(Path(__file__).parents[1]))
from analytics.sentiment import analyzer, score, tag_many  # noqa: E402

TARGET_PER_S = 5_000
HEADLINES = Path(__file__).parents[1] / "tests" / "data"
TWEETS = Path(__file__).parents[2] / "shared" / "data" / "sentiment" / "tweets_GroundTruth.txt.gz"


def headlines() -> list[str]:
    texts = []
    for name in ("crypto_headlines.tsv", "crypto_headlines_holdout.tsv"):
        with open(HEADLINES / name, encoding="utf-8", newline="") as lines:
            texts += [row["text"] for row in csv.DictReader(lines, delimiter="\t")]
    return texts


def tweets() -> list[str]:
    with gzip.open(TWEETS, "rt", encoding="utf-8") as lines:
        return [line.rstrip("\n").split("\t", 2)[2] for line in lines]


def repeated(texts: list[str], count: int) -> list[str]:
    return (texts * (count // len(texts) + 1))[:count]


def best_s(call, repeat: int) -> float:
    """Best wall time of ``repeat`` calls in seconds, after one warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def stock_analyzer() -> SentimentIntensityAnalyzer:
    folder = os.path.dirname(vaderSentiment.__file__)
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
    return SentimentIntensityAnalyzer(lexicon_file="vader_lexicon.txt")


def corpus(texts: list[str], stock: SentimentIntensityAnalyzer, repeat: int) -> dict:
    ours_s = best_s(lambda: score(texts), repeat)
    stock_s = best_s(lambda: [stock.polarity_scores(text)["compound"] for text in texts], repeat)
    tag_s = best_s(lambda: tag_many(texts), repeat)
    return {"texts": len(texts), "mean_chars": sum(map(len, texts)) / len(texts),
            "score_per_s": len(texts) / ours_s, "stock_vader_per_s": len(texts) / stock_s,
            "ratio_to_stock": stock_s / ours_s, "tag_many_per_s": len(texts) / tag_s}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000, help="items per corpus (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each, the best kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    start = time.perf_counter()
    analyzer()
    first_ms = 1e3 * (time.perf_counter() - start)
    stock = stock_analyzer()
    result = {"cpu": cpus[-1], "repeat": args.repeat, "analyzer_first_call_ms": first_ms,
              "headlines": corpus(repeated(headlines(), args.texts), stock, args.repeat),
              "tweets": corpus(repeated(tweets(), args.texts), stock, args.repeat), "target_per_s": TARGET_PER_S}
    result["pass"] = result["headlines"]["score_per_s"] >= TARGET_PER_S
    if args.json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        print(report(result))
    return result


def report(r: dict) -> str:
    lines = [f"Sentiment throughput on one core (CPU {r['cpu']}), best of {r['repeat']}; "
             f"ratio = stock time / ours (above 1: ours is faster)",
             f"  {'corpus':<10}{'texts':>8}{'chars':>7}{'score()/s':>12}{'stock VADER/s':>15}{'ratio':>7}"
             f"{'tag_many/s':>12}{'target':>9}"]
    for name in ("headlines", "tweets"):
        c = r[name]
        verdict = ("PASS" if r["pass"] else "FAIL") if name == "headlines" else "-"
        lines.append(f"  {name:<10}{c['texts']:>8,}{c['mean_chars']:>7.0f}{c['score_per_s']:>12,.0f}"
                     f"{c['stock_vader_per_s']:>15,.0f}{c['ratio_to_stock']:>7.2f}{c['tag_many_per_s']:>12,.0f}"
                     f"{verdict:>9}")
    lines.append(f"  target: score() >= {r['target_per_s']:,} headlines/s -> {'PASS' if r['pass'] else 'FAIL'}; "
                 f"analyzer() first call (lexicon load) {r['analyzer_first_call_ms']:.0f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
