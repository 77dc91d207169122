"""evaluate: code benchmarks, prompts, generation backends, the sandbox and pass@k (spec §10, OpenCodeEval).

- `stage.py`: the `evaluate` stage (`cookbook evaluate --model PATH | --samples FILE`).
- `benchmarks/`: the registry; one module per benchmark family (humaneval, mbpp + mbpp_3shot, mbppplus).
- `prompts.py`: base vs chat prompting, stop strings, sanitizing.
- `backends.py`: HF transformers, vLLM, OpenAI-compatible HTTP behind one `generate` interface.
- `sandbox.py` (+ `_sandbox_child.py`): `execute_code(program, ...) -> ExecutionResult`, `execute_many`.
- `passk.py`: the unbiased pass@k estimator.
- `paper_scores.yaml`: OpenCoder's reported scores (Tables 6/7) for the report stage.
- `tiny_model.py`: a tiny random Llama + tokenizer for tests and benchmarks.
"""
