"""evaluate: code benchmarks, prompts, generation backends, the sandbox and pass@k, as OpenCodeEval runs them
(spec §10; OpenCoder-llm/OpenCoder-llm 6131c47).

- `stage.py`: the `evaluate` stage (`cookbook evaluate --model PATH | --samples FILE`).
- `benchmarks/`: the registry under the paper's names; humaneval, humaneval_plus, mbpp (EvalPlus base tests),
  mbpp_plus, mbpp_3shot, mbpp_500; `evalplus.py` scores against canonical outputs computed in the sandbox.
- `prompts.py`: base vs chat prompting, stop strings, end-of-sequence cut, OpenCodeEval's sanitizer.
- `model_kind.py`: base or chat by what the model is (its export's `cookbook.json`), and its preset's settings.
- `backends.py`: HF transformers, vLLM, OpenAI-compatible HTTP behind one `generate` interface; data-parallel
  engines.
- `execution.py`: programs in the sandbox here or spread over Ray workers; `sandbox.py` (+ `_sandbox_child.py`):
  `execute_code(program, ...) -> ExecutionResult`, `execute_many`.
- `fidelity.py`, `planted_answers.py`: prompts and post-processing compared with OpenCodeEval's own output
  (`data/opencodeeval/`).
- `passk.py`: the unbiased pass@k estimator.
- `paper_scores.yaml`: OpenCoder's reported scores (Tables 6/7) for the report stage.
- `tiny_model.py`: a tiny random Llama + tokenizer for tests and benchmarks.
"""
