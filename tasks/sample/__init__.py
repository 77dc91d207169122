"""Sample: per-language byte caps by a seeded id ranking (`ranking.py`), the stage (`stage.py`)."""
