"""What a sweep reads and writes: its CSV, plot and models are checked before anything trains, a damaged CSV is one
line naming the file and the line, and no write replaces a device, FIFO or shipped file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from badnets_utils._io.files import atomic_write_text
from badnets_utils.studies.sweep import FIELDS, read_results, write_results
from badnets_utils.tools import cli

TINY = ["sweep", "--rates", "0", "0.1", "--epochs", "1", "--train_limit", "100", "--test_limit", "50", "--device",
        "cpu", "--workers", "1"]  # fmt: skip


def _sweep(args: list[str], capsys) -> tuple[int, str]:
    code = cli.main([*TINY, *args])
    err = capsys.readouterr().err.strip()
    return code, err


def _device(path) -> None:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the numbers of /dev/null, in a temporary folder


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root (as in Docker and Colab)")
def test_a_device_is_never_replaced(tmp_path, capsys):
    node = tmp_path / "null"
    _device(node)
    code, err = _sweep(["--csv", str(node)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "character device" in err, err
    with pytest.raises(ValueError, match="character device"):
        atomic_write_text(node, "x")  # the one writer refuses it too
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_fifo_is_refused_without_hanging(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(code=_sweep(["--csv", str(fifo)], capsys)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the sweep hangs on a FIFO"
    code, err = outcome["code"]
    assert code == 2 and "FIFO" in err and len(err.splitlines()) == 1, err
    with pytest.raises(ValueError, match="FIFO"):
        read_results(fifo)


@pytest.mark.parametrize("what", ["folder", "under a file", "shipped", "plot is a folder", "models under a file"])
def test_outputs_are_checked_before_any_training(tmp_path, capsys, what):
    csv = tmp_path / "s.csv"
    args = ["--csv", str(csv)]
    if what == "folder":
        csv.mkdir()
    elif what == "under a file":
        (tmp_path / "f").write_text("x")
        args = ["--csv", str(tmp_path / "f" / "s.csv")]
    elif what == "shipped":
        args = ["--csv", str(Path(__file__).resolve().parents[2] / "results" / "asr_vs_rate_MNIST.csv")]
    elif what == "plot is a folder":
        (tmp_path / "s.png").mkdir()
    else:
        (tmp_path / "s_models").write_text("x")
        args += ["--keep_models"]
    code, err = _sweep([*args, "--data_path", str(tmp_path / "no-data")], capsys)  # no data: training would fail
    assert code == 2 and len(err.splitlines()) == 1 and "MNIST not found" not in err, err


def _rows() -> list[dict]:
    row = dict.fromkeys(FIELDS)
    row.update(dataset="MNIST", trigger="white", trigger_size=5, position="bottom-right", alpha=1.0, trigger_label=1,
               attack="all-to-one", poisoning_rate=0.1, poison_mode="add", seed=0, epochs=1, batch_size=128, lr=0.002,
               optimizer="adam", loss="cross", poisoned=10, train_size=100, trained_on=110, test_size=50, tca=0.9,
               asr=0.5, seconds=1.0)  # fmt: skip
    return [row, {**row, "seed": 1}]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.replace(",", ";"), "no 'dataset' column"),
        (lambda t: t.replace("dataset", "DATASET", 1), "no 'dataset' column"),
        (lambda t: t.replace("tca", "tca,tca", 1), "'tca' appears twice"),
        (lambda t: t.rstrip("\n").rsplit(",", 5)[0] + "\n", "line 3"),  # a truncated last row
        (lambda t: t.replace(",0.9,", ",nan,", 1), "line 2: tca 'nan'"),
        (lambda t: t + t.splitlines()[1] + "\n", "line 4: the same run twice"),
        (lambda t: t.replace("\n1,", "\nabc,", 1) if "\n1," in t else t.replace(",add,0,", ",add,x,", 1), "line 2"),
    ],
)
def test_a_damaged_csv_is_one_line_naming_the_file_and_line(tmp_path, damage, message):
    path = tmp_path / "s.csv"
    write_results(_rows(), path)
    path.write_text(damage(path.read_text()))
    with pytest.raises(ValueError, match=message) as err:
        read_results(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_spreadsheets_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "s.csv"
    write_results(_rows(), path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # what Excel writes
    assert [r["seed"] for r in read_results(path)] == [0, 1]


def test_a_numpy_rate_poisons_the_count_its_decimal_says_and_minus_zero_is_zero():
    import numpy as np

    from badnets_utils import Attack, Budget, poison_count
    from badnets_utils.studies.sweep import run_key

    assert poison_count(100, Attack(rate=np.float32(0.29)).rate) == 29  # the attack reads it as made
    assert run_key(Attack(rate=-0.0), Budget()) == run_key(Attack(rate=0), Budget())


@pytest.mark.parametrize("address", ["garbage", "tls://127.0.0.1:1"])
def test_an_unusable_scheduler_is_one_line_naming_the_flag(address, capsys):
    pytest.importorskip("distributed")
    code, err = _sweep(["--scheduler", address], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "--scheduler" in err and address in err, err


def test_pairs_and_targets_together_are_refused(capsys):
    code, err = _sweep(["--pairs", "7:1", "--targets", "3"], capsys)
    assert code == 2 and "--pairs and --targets" in err, err


def test_workers_and_executors_of_other_types():
    import numpy as np

    from badnets_utils import Attack, Budget
    from badnets_utils.core.pipeline import load_data, run
    from badnets_utils.studies.pool import Runs, run_all

    with pytest.raises(ValueError, match="executor 'x' is not allowed"):
        run_all(Runs([Attack()], Budget(), run=run, load=load_data), executor="x")
    with pytest.raises(ValueError, match="allowed: a whole number"):
        run_all(Runs([Attack()], Budget(), run=run, load=load_data), workers=np.int64(0))
    none = Runs([], Budget(), run=run, load=load_data)
    assert run_all(none, workers=np.int64(2)) == []  # a NumPy integer is a whole number


def test_executors_that_run_two_runs_in_one_process_are_refused():
    from concurrent.futures import ThreadPoolExecutor

    from badnets_utils import Attack, Budget
    from badnets_utils.core.pipeline import load_data, run
    from badnets_utils.studies.pool import Runs, run_all

    runs = Runs([Attack()], Budget(), run=run, load=load_data)
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="ThreadPoolExecutor"):
        run_all(runs, executor=pool)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        with distributed.Client(c) as client, pytest.raises(ValueError, match="has 2 threads"):
            run_all(runs, executor=client.get_executor())


def test_one_writer_per_csv_and_per_output_folder(tmp_path, capsys):
    """A second sweep on one CSV, or a second run into one --output_dir, says which process holds it; a holder that
    dies (its descriptor closed) leaves nothing stuck."""
    from badnets_utils._io.files import held

    csv = tmp_path / "s.csv"
    with held(csv, "--csv"):
        code, err = _sweep(["--csv", str(csv)], capsys)
        assert code == 2 and f"is in use by process {os.getpid()}" in err, err
    with held(csv, "--csv"):  # released: taken again
        pass
    out = tmp_path / "runs"
    out.mkdir()
    with held(out, "--output_dir"):
        code = cli.main(["--output_dir", str(out), "--epochs", "1", "--train_limit", "100", "--test_limit", "50"])
        err = capsys.readouterr().err
        assert code == 2 and "--output_dir" in err and "in use by process" in err, err
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
