"""Training: presets (`presets.py`), model construction that scales (`modeling.py`), packed attention
without masks (`attention.py`), the DeepSpeed config built from params (`ds_config.py`), the loop
(`loop.py`: one function per worker), LR schedules (`schedule.py`), per-rank batches as functions of the
step with prefetch (`data.py`, SFT examples in `sft_store.py`), checkpoints (`checkpoint.py`), HF export
(`export.py`), the Ray Train launcher with elastic restarts (`launcher.py`), a plain N-process launcher
(`local_launch.py`), the data/model contract (`contract.py`) and the stages `pretrain`, `anneal`, `sft`.
"""
