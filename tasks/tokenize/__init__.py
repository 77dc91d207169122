"""Tokenize: byte-level BPE training with the OpenCoder chat template (`tokenizer.py`) on a seeded sample chosen
by id on the workers (`training_sample.py`), per-slice token shards and their index read as fixed-length
sequences (`packing.py`), and the stage (`stage.py`).
"""
