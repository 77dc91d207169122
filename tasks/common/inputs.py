"""Checks that a stage's inputs are usable before it starts, so a bad input is one line, not a traceback.

`cookbook <stage>` calls `check_stage_inputs` before running the stage (after the params loaded):

- every Parquet file under a data input (its `dropped/` rows are never read, so not checked) must have a
  readable footer: a truncated or foreign `.parquet` is reported with its path (`ingest` is exempt: its input
  is raw sources, and a damaged table there becomes a dropped `corrupt_file` row);
- a model input (`anneal`, `sft`, `evaluate --model`) must be a Hugging Face folder that loads: a config,
  a tokenizer and weight files whose headers parse (the weights themselves are not read).

Both raise `InputError` (exit 2 in `cookbook`); a missing path is left to the stage (`MissingInputError`).
`disk_full_line` turns a full disk met while writing (an `OSError` ENOSPC, also raised through a Ray task)
into the one line `cookbook` prints: stage outputs are atomic, so nothing half-written is left behind.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from tasks.common.shards import DROPPED, is_uri, list_shards, prepare_output

MODEL_STAGES = ("anneal", "sft", "evaluate")
"""Stages whose `--input` is a model folder."""
RAW_INPUT_STAGES = ("ingest",)
"""Stages that read raw sources and turn unreadable ones into dropped rows themselves."""
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


class InputError(ValueError):
    """An input exists but cannot be used (a damaged shard, a folder that is not a model); names path and fix."""


def parquet_files(root: Path) -> list[Path]:
    """The Parquet files a stage reads under `root` (a file or a folder), `dropped/` folders left out."""
    if root.is_file():
        return [root] if root.suffix == ".parquet" else []
    return sorted(p for p in root.rglob("*.parquet") if DROPPED not in p.relative_to(root).parts)


def unreadable_parquet(files: Iterable[Path]) -> tuple[Path, str] | None:
    """The first file whose footer does not parse, with pyarrow's reason (None when all parse)."""
    for path in files:
        try:
            pq.read_metadata(path)
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError and others for damaged files
            return path, str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def check_shards(root: Path) -> None:
    found = unreadable_parquet(parquet_files(root))
    if found is not None:
        path, reason = found
        raise InputError(f"input shard '{path}' is not readable Parquet ({reason}): re-run the stage that wrote "
                         f"'{root}' or remove the file")


def model_problem(folder: Path) -> str | None:
    """Why `folder` is not a loadable Hugging Face model folder, or None."""
    if not folder.is_dir():
        return "not a folder"
    if not (folder / "config.json").is_file():
        return "no config.json"
    weights = [p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)]
    if not weights:
        return "no weights (*.safetensors or pytorch_model*.bin)"
    try:
        from transformers import AutoConfig, AutoTokenizer

        AutoConfig.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)
        for path in weights:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as f:
                    f.keys()
    except Exception as err:  # OSError, ValueError, JSONDecodeError, safetensors' own SafetensorError, ...
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    return None


def check_model(folder: Path) -> None:
    problem = model_problem(folder)
    if problem is not None:
        raise InputError(f"model '{folder}' does not load ({problem}): pass a folder written by a training stage "
                         "(models/<stage>) or `save_pretrained`")


def check_uri_input(uri: str) -> None:
    """An input on an object store: it must be reachable, readable and hold a stage folder (or a shard);
    `list_shards` raises `MissingInputError` naming it otherwise. Footers are read by the stage itself."""
    list_shards(uri)


def check_stage_inputs(stage: str, input_path: str | Path | None, extra_inputs: Iterable[Path] = (), *,
                       model_input: bool | None = None) -> None:
    """Raise `InputError` when an existing input of `stage` cannot be used (missing local paths are the stage's;
    an unreachable, forbidden or missing URI is `MissingInputError` here, before any work)."""
    model_input = stage in MODEL_STAGES if model_input is None else model_input
    if input_path is not None and is_uri(input_path):
        if model_input:
            raise InputError(f"model '{input_path}' must be a local folder: copy it to this machine first")
        check_uri_input(str(input_path))
    elif input_path is not None and Path(input_path).exists():
        if model_input:
            check_model(Path(input_path))
        elif stage not in RAW_INPUT_STAGES:
            check_shards(Path(input_path))
    for extra in extra_inputs:
        if extra.exists():
            check_shards(extra)


def check_stage_output(output_path: str | Path | None) -> None:
    """An output on an object store must be writable (bucket exists, permission): one line before any work."""
    if output_path is not None and is_uri(output_path):
        prepare_output(output_path)


def error_chain(err: BaseException) -> list[BaseException]:
    """The error and its causes/contexts (Ray Data wraps a worker's OSError in its own errors)."""
    chain: list[BaseException] = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


TORCH_WRITE_FAILED = ("PytorchStreamWriter failed writing file", "unexpected pos")
"""What torch.save says when its writes stop short (the zip writer checks its position): a full disk, where the
errno is lost (`[enforce fail at inline_container.cc:...] . unexpected pos N vs M`)."""


def is_disk_full(err: BaseException) -> bool:
    """Whether an error is, or was caused by, a full disk (ENOSPC; pyarrow and Ray carry it in the message only,
    torch's checkpoint writer only as a short write)."""
    return any((isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e)
               or any(m in str(e) for m in TORCH_WRITE_FAILED) for e in error_chain(err))


def disk_full_line(err: BaseException, output: Path | None) -> str:
    """`no space left ...` naming the file being written (else the stage output) and the fix."""
    where = next((e.filename for e in error_chain(err) if isinstance(e, OSError) and e.filename), None) or output
    return (f"no space left on the device holding '{where}': free space there (or pass --output on another disk) "
            "and re-run; the previous output, if any, is unchanged")
