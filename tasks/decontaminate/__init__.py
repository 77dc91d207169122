"""The `decontaminate` stage: training rows that contain benchmark test data are dropped (paper §4.4)."""
