"""tokenize: see the modules of this package."""
