"""Fault-injection helpers shared by `benchmarks/faults.py` and `tests/faults/`: a small project folder, stage
digests that compare outputs row by row, a reader's view of an output, process trees killed at points where the
stage had started writing, and the servers (MLflow, Prefect) that are stopped under a running stage."""
