"""dedup: see the modules of this package."""
