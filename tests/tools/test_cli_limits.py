"""The limits of what the commands accept, each checked before anything trains (one line, exit 2, nothing written):
upper bounds of a budget and of a sweep, a sweep's triggers and dataset before its pool starts, numbers as typed
(ASCII digits, never rounded to 0), an empty training set, DataParallel weights; and what a sweep says when it is
stopped (SIGTERM) or started by a script without the ``__main__`` guard."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from badnets_utils.core.config import MAX_BATCH_SIZE, MAX_EPOCHS, Attack, Budget
from badnets_utils.tools import cli
from badnets_utils.tools.sweep_command import MAX_RUNS, build_parser

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "1", "--train_limit", "100", "--test_limit", "50", "--device", "cpu"]


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def _refused(code: int, err: str, *words: str) -> None:
    assert code == 2 and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("flag, value, top", [("--epochs", 10**9, MAX_EPOCHS), ("--batch_size", 10**9, MAX_BATCH_SIZE)])
def test_a_budget_has_upper_bounds(flag, value, top, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _main([flag, str(value), "--output_dir", str(out)], capsys)
    _refused(code, err, f"{flag[2:]} {value} is too large", f"1..{top}")
    assert not out.exists()  # before the output folder is made
    Budget(epochs=MAX_EPOCHS, batch_size=MAX_BATCH_SIZE)  # the bounds themselves are allowed
    with pytest.raises(ValueError, match="too large"):
        Budget(**{flag[2:]: top + 1})


def test_a_sweep_larger_than_the_cap_is_refused_before_its_attacks_are_made(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    rates = [str(i / 20_000) for i in range(MAX_RUNS // 2 + 1)]
    start = time.perf_counter()
    code, out, err = _main(["sweep", "--rates", *rates, "--seeds", "0", "1", "--csv", str(csv)], capsys)
    _refused(code, err, f"{MAX_RUNS + 2:,} runs", f"at most {MAX_RUNS:,}", "--rates", "--seeds")
    assert out == "" and not csv.exists() and time.perf_counter() - start < 5


def _bad_png(tmp_path: Path) -> Path:
    png = tmp_path / "bad.png"
    png.write_text("not an image")
    return png


def test_a_sweeps_triggers_and_dataset_are_checked_before_its_pool_starts(mnist_root, tmp_path, capsys):
    csv = tmp_path / "s.csv"
    sweep = ["sweep", *TINY, "--rates", "0", "0.1", "--workers", "2", "--csv", str(csv)]
    code, out, err = _main([*sweep, "--triggers", "white", str(_bad_png(tmp_path)), "--data_path", str(mnist_root)],
                           capsys)  # fmt: skip
    _refused(code, err, "bad.png")
    assert out == "" and not csv.exists()  # before the first line, not one failure per run in the workers (exit 1)
    code, out, err = _main([*sweep, "--data_path", str(tmp_path / "no-data")], capsys)
    _refused(code, err, "MNIST not found")
    assert out == "" and not csv.exists()
    from badnets_utils.studies.sweep import run_sweep

    with pytest.raises(ValueError, match="bad.png"):  # the library's sweep too
        run_sweep([Attack(trigger=_bad_png(tmp_path))], Budget(epochs=1), csv, mnist_root, workers=2)
    assert not csv.exists()


def test_sweep_takes_no_progress():
    assert build_parser().parse_args(["--no_progress"]).no_progress is True
    assert build_parser().parse_args([]).no_progress is False


@pytest.mark.parametrize(
    "args, shown",
    [
        (["--seed", "١٢"], "'١٢'"),  # Arabic-Indic digits: int() reads them as 12
        (["--epochs", "１"], "'１'"),  # a full-width digit
        (["--poisoning_rate", "٠.١"], "'٠.١'"),
        (["sweep", "--seeds", "٣"], "'٣'"),
        (["sweep", "--pairs", "٧:١"], "'٧:١'"),
    ],
)
def test_numbers_in_other_scripts_digits_are_refused(args, shown, tmp_path, capsys):
    code, _, err = _main([*args, "--output_dir" if args[0] != "sweep" else "--csv", str(tmp_path / "o")], capsys)
    _refused(code, err, shown)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flag, typed, words",
    [
        ("--lr", "1e-400", "too small"),
        ("--poisoning_rate", "1e-400", "too small"),  # would have been a clean run, read as rate 0
        ("--lr", "1e400", "too large"),
    ],
)
def test_a_number_is_shown_as_typed_never_rounded_to_zero(flag, typed, words, tmp_path, capsys):
    code, _, err = _main([flag, typed, "--output_dir", str(tmp_path / "o")], capsys)
    _refused(code, err, flag, f"'{typed}'", words)
    assert "0.0;" not in err.split("(")[0]


def test_an_empty_training_set_is_one_line_before_training(mnist_root, tmp_path, capsys):
    from badnets_utils.core.data import ImageData, load_dataset
    from badnets_utils.core.pipeline import load_data, run

    _, test = load_data("MNIST", Budget(test_limit=50), 0, mnist_root)
    empty = ImageData(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), test.classes)
    with pytest.raises(ValueError, match="holds no images; allowed: at least one"):
        run(Attack(rate=0), Budget(epochs=1), data=(empty, test), progress=False)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(Path(mnist_root) / "MNIST" / "raw" / name, raw / name)
    (raw / "train-images-idx3-ubyte").write_bytes((2051).to_bytes(4, "big") + bytes(4) + (28).to_bytes(4, "big") * 2)
    (raw / "train-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + bytes(4))
    assert len(load_dataset("MNIST", True, tmp_path / "data")) == 0  # a well-formed file of no images
    for rate in ("0", "0.1"):
        code, _, err = _main(["--data_path", str(tmp_path / "data"), "--poisoning_rate", rate, *TINY,
                              "--output_dir", str(tmp_path / "out"), "--no_progress"], capsys)  # fmt: skip
        _refused(code, err, "MNIST-train holds no images")
    code, _, err = _main(["sweep", "--data_path", str(tmp_path / "data"), *TINY, "--csv", str(tmp_path / "s.csv")],
                         capsys)  # fmt: skip
    _refused(code, err, "0 images")
    assert not (tmp_path / "s.csv").exists()


def test_dataparallel_weights_get_a_hint(tmp_path):
    from badnets_utils._io.checkpoint_files import CheckpointError
    from badnets_utils.core.checkpoints import load_checkpoint
    from badnets_utils.core.models import build_model

    state = {f"module.{k}": v for k, v in build_model("MNIST", 10).state_dict().items()}
    for blob, name in (({"model_state": state, "config": {"dataset": "MNIST"}}, "wrapped.pth"), (state, "bare.pth")):
        torch.save(blob, tmp_path / name)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name, quiet=True)
        message = str(err.value)
        assert "DataParallel" in message and "'module.'" in message and "\n" not in message, message


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def test_a_terminated_sweep_says_what_it_kept(mnist_root, tmp_path):
    csv = tmp_path / "s.csv"
    rates = [str(r) for r in (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
    args = [sys.executable, "-m", "badnets_utils", "sweep", *TINY, "--workers", "1", "--rates", *rates,
            "--data_path", str(mnist_root), "--csv", str(csv), "--no_progress"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (csv.exists() and len(csv.read_text().splitlines()) > 1):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    rows = len(csv.read_text().splitlines()) - 1
    assert 1 <= rows < len(rates)
    assert err.strip().splitlines()[-1] == (f"badnets: terminated (SIGTERM); every run that finished is kept in {csv} "
                                            f"({rows} row{'s' if rows > 1 else ''} in all); run the same command "
                                            "again to train the rest")  # fmt: skip
    assert "nothing of this run was saved" not in err


def test_a_script_without_the_main_guard_is_told_in_one_line(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent("""
        from badnets_utils import Attack, Budget
        from badnets_utils.studies.pool import run_many

        run_many([Attack(seed=0), Attack(seed=1)], Budget(epochs=1, train_limit=100, test_limit=50, device="cpu"),
                 workers=2, progress=False)
        print("finished")
    """)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=_env(), timeout=300,
                          cwd=tmp_path)  # fmt: skip
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "finished" not in done.stdout
    assert last.startswith("badnets_utils.studies.pool.MainGuardError: ") and 'if __name__ == "__main__":' in last
    assert done.stderr.count("Traceback") == 1, done.stderr  # the parent's own, not one per worker
    assert "bootstrapping phase" not in done.stderr and "worker process died" not in done.stderr
