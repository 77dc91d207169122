"""The terminal: library loggers quiet, one timestamp per line, the stage named; progress lines with a rate and
an ETA at most every interval, and a report when a watched process stays silent."""

from __future__ import annotations

import logging

import pytest

from tasks.common.logs import QUIET_LOGGERS, RunFormatter, configure_logging, log_format
from tasks.common.progress import Progress, SilenceWatch, format_duration, output_label, progress_line


@pytest.fixture
def restore_logging(monkeypatch):
    for var in ("COOKBOOK_LOG_TIMESTAMPS", "MLFLOW_LOGGING_LEVEL", "RAY_DATA_LOG_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    root = logging.getLogger()
    saved = (root.level, root.handlers[:], {n: logging.getLogger(n).level for n in QUIET_LOGGERS})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_library_loggers_are_quiet_and_ours_speak(restore_logging):
    import os

    configure_logging()
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("ray.data").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("alembic.runtime.migration").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("cookbook").getEffectiveLevel() == logging.INFO
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING" and os.environ["RAY_DATA_LOG_LEVEL"] == "WARNING"
    configure_logging(verbose=True)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG


def test_deepspeed_saying_the_machine_has_no_gpu_is_dropped_unless_verbose(restore_logging):
    library, seen = logging.getLogger("DeepSpeed"), []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    library.addHandler(handler)
    notice = "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it."
    try:
        configure_logging()
        library.warning(notice)
        library.warning("ZeRO stage 3 offload: pin_memory is off")
        assert seen == ["ZeRO stage 3 offload: pin_memory is off"]
        configure_logging(verbose=True)
        library.warning(notice)
        assert seen[-1] == notice
    finally:
        library.removeHandler(handler)
        library.filters.clear()


def test_the_handler_follows_stderr_when_it_is_swapped_and_closed(restore_logging, monkeypatch):
    """An earlier caller's stderr (pytest's capture, Prefect's redirection) closed later must not break logging."""
    import io

    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("cookbook").info("still heard")
    assert "INFO cookbook: still heard" in second.getvalue() and "Logging error" not in second.getvalue()


def _format(fmt: str, **extra) -> str:
    record = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, "Running stage 'clean':", None, None)
    record.__dict__.update(extra)
    return RunFormatter(fmt, datefmt="%H:%M:%S").format(record)


def test_one_timestamp_per_line_and_the_stage_named():
    line = _format(log_format(True), task_run_name="clean", flow_run_name="spicy-adder")
    assert line.endswith(" INFO clean: Running stage 'clean':") and line.count(":") == 4  # HH:MM:SS + 2
    assert _format(log_format(False)) == "INFO prefect.task_runs: Running stage 'clean':"  # a flow's child
    assert _format(log_format(False), flow_run_name="spicy-adder").startswith("INFO flow spicy-adder:")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_logs_at_most_every_interval_with_rate_and_eta():
    clock, lines = Clock(), []
    progress = Progress("clean", total=1000, interval=10, emit=lines.append, clock=clock)
    clock.now = 4
    assert progress.advance(100) is None
    clock.now = 10
    assert progress.advance(150) == "clean: 250 / 1,000 rows (25%), 25 rows/s, ETA 30s"
    clock.now = 15
    assert progress.advance(100, loss=2.345678) is None
    clock.now = 20
    assert progress.advance(0, loss=2.345678) == "clean: 350 / 1,000 rows (35%), 18 rows/s, ETA 37s, loss 2.346"
    assert progress.finish() == lines[-1] and len(lines) == 3


def test_progress_without_total_and_durations():
    assert progress_line("pretrain", 3, None, 90.0, "steps") == "pretrain: 3 steps, 0.03 steps/s, elapsed 1m30s"
    assert progress_line("sample", 3604, None, 3.0, "rows", {"kept": 3604}).endswith("elapsed 3s, kept 3,604")
    assert [format_duration(s) for s in (9.6, 125, 3725)] == ["10s", "2m05s", "1h02m"]


def test_a_progress_line_names_the_output_a_temporary_folder_will_replace():
    assert output_label("/work/data/.recall.tmp-95b09e76") == "recall"
    assert output_label("s3://bucket/runs/.tokenize.tmp-61c4fd46/") == "tokenize"
    assert output_label("/work/data/clean") == "clean"
    assert output_label("s3://bucket/data/dedup") == "dedup"
    assert output_label("/work/data/.hidden.tmp-notahex") == ".hidden.tmp-notahex"


def test_silence_watch_reports_a_silent_process_with_its_last_line():
    clock, lines = Clock(), []
    watch = SilenceWatch("pretrain", interval=10, emit=lines.append, clock=clock)
    clock.now = 3
    watch.heard("> cookbook pretrain\n")
    clock.now = 12
    assert watch.tick() is None  # 9 s since the last line
    clock.now = 13
    assert watch.tick() == "pretrain: running for 13s, last: > cookbook pretrain"
    clock.now = 20
    assert watch.tick() is None
    clock.now = 23
    assert watch.tick() == "pretrain: running for 23s, last: > cookbook pretrain" and len(lines) == 2


# --- training: the loss reaches the terminal although Ray Train's workers' logs do not ---------------------------

def _phase(name: str, offset: int, total: int):
    from types import SimpleNamespace

    return SimpleNamespace(name=name, step_offset=offset, schedule=SimpleNamespace(total_steps=total))


def test_loss_line_every_log_every_steps_of_each_phase_and_its_last():
    from tasks.train.driver import loss_line

    phases = (_phase("pretrain", 0, 12), _phase("anneal", 12, 4))
    shown = {step: loss_line([str(step), "6.123456", "0.0003", "2100.5"], phases, log_every=5) for step in range(1, 17)}
    assert [s for s, line in shown.items() if line] == [5, 10, 12, 16]  # steps counted within each phase
    assert shown[5] == "pretrain step 5/12 loss 6.1235 lr 0.0003 tok/s 2,100"
    assert shown[16] == "anneal step 4/4 loss 6.1235 lr 0.0003 tok/s 2,100"
    assert loss_line(["step", "loss", "lr", "tokens_per_s"], phases, 5) is None  # the header


def test_loss_lines_follow_the_csv_while_training_writes_it(tmp_path):
    """A real file written row by row by another thread (as rank 0 does), rewritten once (a resumed phase): every
    logged step appears once, in order, and a waiting line comes while no step finished."""
    import csv
    import threading
    import time
    from types import SimpleNamespace

    from tasks.train.driver import LossLines

    plot = tmp_path / "plots" / "pretrain.csv"
    job = SimpleNamespace(plot_csv=str(plot), phases=(_phase("pretrain", 0, 6),), log_every=2, stage="pretrain")
    lines: list[str] = []

    def train():
        time.sleep(0.8)  # workers starting: nothing written yet
        plot.parent.mkdir(parents=True)
        rows = [[s, 7.0 - s / 10, 0.001, 1000] for s in range(1, 7)]
        with open(plot, "w", newline="", buffering=1) as f:
            w = csv.writer(f)
            w.writerow(["step", "loss", "lr", "tokens_per_s"])
            for row in rows[:3]:
                w.writerow(row)
                time.sleep(0.1)
        time.sleep(0.5)
        with open(plot, "w", newline="", buffering=1) as f:  # resumed from step 2: rewritten, then on
            w = csv.writer(f)
            w.writerow(["step", "loss", "lr", "tokens_per_s"])
            for row in rows:
                w.writerow(row)
                time.sleep(0.1)

    with LossLines(job, emit=lines.append, interval=0.5, poll_s=0.05):
        worker = threading.Thread(target=train)
        worker.start()
        worker.join()
    losses = [line for line in lines if " loss " in line]
    assert losses == ["pretrain step 2/6 loss 6.8000 lr 0.001 tok/s 1,000", "pretrain step 4/6 loss 6.6000 lr 0.001 tok/s 1,000",
                      "pretrain step 6/6 loss 6.4000 lr 0.001 tok/s 1,000"], lines
    assert lines[0].startswith("pretrain: starting the Ray Train workers"), lines


def test_the_progress_bound_is_ten_seconds():
    from tasks.common.progress import PROGRESS_INTERVAL_S
    from tasks.train.driver import LossLines

    assert PROGRESS_INTERVAL_S <= 10
    assert LossLines.__init__.__defaults__[1] == PROGRESS_INTERVAL_S  # the training heartbeat uses it


def test_loss_lines_reread_a_csv_rewritten_with_other_rows(tmp_path):
    """A phase resumed from step 2 drops rows 3.. and writes them again (other losses, other lengths)."""
    from types import SimpleNamespace

    from tasks.train.driver import LossLines

    plot = tmp_path / "sft.csv"
    job = SimpleNamespace(plot_csv=str(plot), phases=(_phase("sft", 0, 5),), log_every=1, stage="sft")
    lines: list[str] = []
    follow = LossLines(job, emit=lines.append)
    plot.write_text("step,loss,lr,tokens_per_s\n1,2.5,0.1,10\n2,2.4,0.1,10\n3,2.3333333,0.1,10\n4,2.2")
    follow.read_new_rows()
    assert [line.split(" loss ")[0] for line in lines] == ["sft step 1/5", "sft step 2/5", "sft step 3/5"]  # 4 unfinished
    plot.write_text("step,loss,lr,tokens_per_s\n1,2.5,0.1,10\n2,2.4,0.1,10\n3,2.31,0.1,10\n4,2.2,0.1,10\n")
    follow.read_new_rows()
    assert [line.split(" loss ")[0] for line in lines][3:] == ["sft step 4/5"]
    plot.write_text(plot.read_text() + "5,2.1,0.1,10\n")
    follow.read_new_rows()
    assert lines[-1] == "sft step 5/5 loss 2.1000 lr 0.1 tok/s 10" and len(lines) == 5
