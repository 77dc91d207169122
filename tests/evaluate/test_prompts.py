"""Literal-input tests of prompting, sanitizing and pass@k."""

import math

import pytest

from tasks.evaluate import benchmarks
from tasks.evaluate.benchmarks.mbpp import entry_point, format_item
from tasks.evaluate.passk import mean_pass_at_k, pass_at_k
from tasks.evaluate.prompts import (CHAT_PREFIX, chat_prompt, cut_at_end_of_sequence, extract_code_block, longest_valid_code,
                                    refine_text, sanitize, stop_strings, truncate_at_stop, wrap_completion_task)


def test_refine_text_normalises_tabs_newlines_and_ends_with_one_newline():
    assert refine_text("\tx = 1\r\n\n") == "x = 1\n"
    assert refine_text("a\r\n\tb  ") == "a\n    b\n"


def test_base_stops_include_completion_stops_and_chat_stops_do_not():
    assert "\ndef " in stop_strings("base") and "\ndef " not in stop_strings("chat")
    assert "\n```\n" in stop_strings("chat")


def test_truncate_at_first_stop():
    assert truncate_at_stop("    return 1\ndef g():\n    pass\nprint(1)", stop_strings("base")) == "    return 1"


def test_sanitize_keeps_entry_point_and_its_helpers_only():
    text = "def f(x):\n    return g(x)\n\ndef g(x):\n    return x\n\ndef unused():\n    return 0\n\nprint(f(1))\nnot python at all"
    out = sanitize(text, "f")
    assert "def f" in out and "def g" in out and "unused" not in out and "print" not in out


def test_sanitize_follows_opencodeeval_rules():
    # functions without a return are dropped, as OpenCodeEval does
    assert sanitize("def f(x):\n    print(x)\n\ndef g(x):\n    return x\n") == "def g(x):\n    return x"
    # the longest parsing run wins over the first fenced block
    text = "```python\ndef a():\n    return 1\n```\nand also\n```python\ndef b():\n    x = 2\n    return x\n```"
    assert sanitize(text) == "def b():\n    x = 2\n    return x"
    # an attribute's object is not followed (OpenCodeEval's get_deps): h is reached, helper is not
    text = "def helper():\n    return 's'\n\ndef h():\n    return 1\n\ndef f():\n    return helper().strip() + h()\n"
    assert sanitize(text, "f") == "def h():\n    return 1\ndef f():\n    return helper().strip() + h()"
    # only the first 100 lines are searched
    assert sanitize("x = 1\n" * 100 + "def late():\n    return 1\n") == "x = 1"


def test_longest_valid_code_equals_the_exhaustive_search():
    def exhaustive(text):  # OpenCodeEval's extract_longest_valid_code, verbatim in effect
        lines, best, best_n = text.splitlines()[:100], "", 0
        for i in range(len(lines)):
            for j in range(i, len(lines)):
                snippet = "\n".join(lines[i:j + 1])
                try:
                    compile(snippet, "<s>", "exec", dont_inherit=True, flags=0x400)  # ast only
                except (SyntaxError, ValueError):
                    continue
                n = sum(1 for ln in lines[i:j + 1] if ln.strip())
                if n > best_n:
                    best, best_n = snippet, n
        return best

    import ast

    texts = ["Here:\n\ndef f():\n    return 1\n\nThat's it.\n```\nx = (\n\ny = 2",
             "a b c\n\n\nx = 1\n\ny = 2\nnot code here\nz = 3",
             "def f(:\n    pass\nq = 1\n\n\nr = 2\ns s\nt = 3\nu = 4"]
    for text in texts:
        ours, theirs = longest_valid_code(text), exhaustive(text)
        assert ast.dump(ast.parse(ours)) == ast.dump(ast.parse(theirs)), text


def test_end_of_sequence_text_is_cut():
    assert cut_at_end_of_sequence("return 1<|im_end|>\n<|endoftext|>") == "return 1"
    assert cut_at_end_of_sequence("x = 1<eos>junk", ("<eos>",)) == "x = 1"


def test_sanitize_extracts_the_markdown_code_block():
    text = "Sure!\n```python\nimport math\ndef area(r):\n    return math.pi * r * r\n```\nHope it helps."
    assert sanitize(text, "area") == "import math\ndef area(r):\n    return math.pi * r * r"


def test_sanitize_of_garbage_is_empty():
    assert sanitize(")))(((", "f") == ""


def test_extract_code_block_without_fence_returns_text():
    assert extract_code_block("x = 1") == "x = 1"


def test_chat_wrapper_for_completion_tasks():
    wrapped = wrap_completion_task("def f():\n")
    assert wrapped.startswith(CHAT_PREFIX) and wrapped.rstrip().endswith("```")


class _Tok:
    bos_token = "<s>"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "<s><|im_start|>user\n" + messages[0]["content"] + "<|im_end|>\n<|im_start|>assistant\n"


def test_chat_prompt_uses_template_and_strips_bos():
    assert chat_prompt("hi", _Tok(), "models/sft") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_chat_prompt_for_checkpoint_paths_uses_instruction_template():
    assert chat_prompt("hi", _Tok(), "out/checkpoint-100") == "### Instruction:\nhi\n### Response:\n"


def test_mbpp_item_format_matches_opencodeeval():
    assert format_item("Do x.", ["assert f(1) == 1"]) == (
        "You are an expert Python programmer, and here is your task:\nDo x.\n"
        "Your code should pass these tests:\nassert f(1) == 1\n\n```python\n")
    assert format_item("Do x.", ["assert f(1) == 1"], "def f(a):\n\treturn a").endswith("\n```python\ndef f(a):\n    return a\n\n```\n")


def test_mbpp_splits_and_shots():
    zero, three = benchmarks.get("mbpp_500").problems(), benchmarks.get("mbpp_3shot").problems()
    assert [p.task_id for p in zero][:1] == ["11"] and zero[-1].task_id == "510" and len(zero) == 500
    assert three[0].task_id == "10" and three[-1].task_id == "509" and len(three) == 500  # OpenCodeEval's ids
    assert three[0].prompt.count("You are an expert Python programmer") == 4
    assert three[1].prompt.endswith(zero[0].prompt)


def test_evalplus_mbpp_is_problem_text_plus_first_assert():
    base, plus = benchmarks.get("mbpp").problems(), benchmarks.get("mbpp_plus").problems()
    assert len(base) == len(plus) == 399 and base[0].prompt == plus[0].prompt
    assert base[0].prompt == ("Write a function to find the shared elements from the given two lists.\n"
                              "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n")
    assert len(plus[0].data["inputs"]) > len(base[0].data["inputs"]) == 3


def test_every_benchmark_records_its_data_version_and_checksum():
    for name in ("humaneval", "humaneval_plus", "mbpp", "mbpp_plus", "mbpp_3shot"):
        info = benchmarks.get(name).data_info()
        assert info["version"] and len(info["sha256"]) == 64
    assert benchmarks.get("mbpp").data_info() == benchmarks.get("mbpp_plus").data_info()
    assert benchmarks.get("humaneval").data_info()["sha256"] != benchmarks.get("humaneval_plus").data_info()["sha256"]


def test_mbpp_entry_point_from_asserts():
    assert entry_point(["assert remove_Occ(\"hello\",\"l\") == \"heo\""]) == "remove_Occ"
    assert entry_point(["assert set(similar_elements((3, 4),(5, 4))) == set((4,))"]) == "similar_elements"


def test_registry_lists_every_benchmark_module():
    assert {"humaneval", "humaneval_plus", "mbpp", "mbpp_plus", "mbpp_3shot", "mbpp_500"} <= set(benchmarks.names())
    assert benchmarks.get("mbppplus") is benchmarks.get("mbpp_plus")  # the older name still works
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmarks.get("nope")


def test_pass_at_k_matches_closed_form():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(5, 0, 1) == 0.0 and pass_at_k(5, 5, 5) == 1.0
    assert mean_pass_at_k([1, 1, 1, 1], [1, 0, 1, 0], 1) == 0.5
    with pytest.raises(ValueError):
        mean_pass_at_k([1], [0], 2)


def test_evalplus_mbpp_reference_is_mbpps_published_solution_and_scoring_uses_evalplus_canonical():
    p = next(p for p in benchmarks.get("mbpp").problems() if p.task_id == "Mbpp/93")
    assert "a*power(a,b-1)" in p.reference and "return a ** b" in p.data["canonical"]
    assert benchmarks.get("mbpp").canonical_code(p) == p.data["canonical"]
    assert p.data["question"].startswith("Write a function to calculate the value of 'a' to the power 'b'.\nassert")
