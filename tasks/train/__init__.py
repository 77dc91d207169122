"""Training: presets (`presets.py`), the DeepSpeed config built from params (`ds_config.py`), the loop
(`loop.py`: one function per worker), LR schedules (`schedule.py`), batches as functions of the step
(`data.py`), checkpoints (`checkpoint.py`), HF export (`export.py`), the Ray Train launcher
(`launcher.py`), the data/model contract (`contract.py`) and the stages `pretrain`, `anneal`, `sft`.
"""
