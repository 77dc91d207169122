"""clean: see the modules of this package."""
