"""The served Tickscope app: page composition and the once-per-process feed."""
