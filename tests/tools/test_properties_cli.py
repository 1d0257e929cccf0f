"""Property-based tests of the CLI's argument checks: any bad value is one line, exit code 2, nothing written."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badnets_utils.tools.cli import main

SETTINGS = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _run(args, capsys, tmp_path):
    out = tmp_path / "out"
    code = main([*args, "--data_path", str(tmp_path / "no_data"), "--output_dir", str(out), "--no_progress"])
    err = capsys.readouterr().err
    return code, err, out


def _one_line_refusal(code, err, out, flag_value):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("badnets: error:"), err
    assert flag_value in lines[0], (flag_value, err)
    assert not out.exists()  # nothing written, not even the output folder


@SETTINGS
@given(rate=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.000001), st.just(math.nan)))
def test_any_rate_outside_0_1_is_refused(rate, capsys, tmp_path):
    _one_line_refusal(*_run([f"--poisoning_rate={repr(rate)}"], capsys, tmp_path), "poisoning rate")


@SETTINGS
@given(label=st.one_of(st.integers(max_value=-1), st.integers(min_value=10, max_value=10**30)))
def test_any_label_outside_the_classes_is_refused(label, capsys, tmp_path):
    _one_line_refusal(*_run([f"--trigger_label={str(label)}"], capsys, tmp_path), str(label))


@SETTINGS
@given(size=st.one_of(st.integers(max_value=0), st.integers(min_value=29, max_value=10**12)))
def test_any_trigger_size_that_does_not_fit_is_refused(size, capsys, tmp_path):
    _one_line_refusal(*_run([f"--trigger_size={str(size)}"], capsys, tmp_path), str(size))


@SETTINGS
@given(flag=st.sampled_from(["--epochs", "--batch_size", "--train_limit", "--test_limit"]),
       value=st.integers(max_value=0))  # fmt: skip
def test_counts_below_one_are_refused(flag, value, capsys, tmp_path):
    _one_line_refusal(*_run([f"{flag}={str(value)}"], capsys, tmp_path), str(value))


@SETTINGS
@given(lr=st.one_of(st.floats(max_value=0), st.just(math.inf), st.just(math.nan)))
def test_bad_learning_rates_are_refused(lr, capsys, tmp_path):
    _one_line_refusal(*_run([f"--lr={repr(lr)}"], capsys, tmp_path), "learning rate")


@SETTINGS
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_seeds_outside_the_generator_range_are_refused(seed, capsys, tmp_path):
    _one_line_refusal(*_run([f"--seed={str(seed)}"], capsys, tmp_path), "--seed")


@SETTINGS
@given(word=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12))
def test_unknown_names_are_refused(word, capsys, tmp_path):
    for flag, allowed in (("--attack", ("all-to-one", "all-to-all")), ("--loss", ("cross", "mse")),
                          ("--optimizer", ("adam", "sgd")), ("--poison_mode", ("replace", "add"))):  # fmt: skip
        if word not in allowed:
            _one_line_refusal(*_run([f"{flag}={word}"], capsys, tmp_path), repr(word))


@pytest.mark.parametrize("flag", ["--attack", "--epochs", "--lr", "--dataset", "--trigger_path"])
def test_a_double_dash_value_is_refused_by_name(flag, capsys, tmp_path):
    """Found by the property test above: argparse read ``--attack=--`` as an empty list, and the error showed ``[]``."""
    _one_line_refusal(*_run([f"{flag}=--"], capsys, tmp_path), f"argument {flag}: '--'")
