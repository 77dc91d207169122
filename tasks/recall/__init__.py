"""recall: see the modules of this package."""
