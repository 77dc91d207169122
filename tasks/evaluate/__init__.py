"""evaluate: see the modules of this package."""
