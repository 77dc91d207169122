"""Tokenize: byte-level BPE training with the OpenCoder chat template (`tokenizer.py`), packing into
fixed-length sequences read by index (`packing.py`), and the stage (`stage.py`).
"""
