"""The allocator setting changes speed only: it is set on glibc Linux, can be turned off, and a run trains the
same weights to the last bit with it and without it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from badnets_utils._io import allocator

ROOT = Path(__file__).resolve().parents[2]
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _is_allocator_setting(var: str) -> bool:
    return var in ("GLIBC_TUNABLES", allocator.OPT_OUT_ENV) or var.startswith("MALLOC_")


def _env_without_allocator_settings(**env: str) -> dict:
    """This process's environment less every allocator setting, plus ``env``, for a fresh process of this checkout."""
    return {**{k: v for k, v in os.environ.items() if not _is_allocator_setting(k)}, **env, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def set_only(monkeypatch):
    """Leave this process with no allocator setting but the ones given."""

    def apply(env: dict) -> None:
        for var in [v for v in os.environ if _is_allocator_setting(v)]:
            monkeypatch.delenv(var)
        for var, value in env.items():
            monkeypatch.setenv(var, value)

    return apply


# A short real run in a fresh process (the setting is per process and made once): its weights' digest and scores.
RUN = """
import hashlib, json, sys
import torch
from badnets_utils import Attack, Budget, run
from badnets_utils._io.allocator import tune_allocator
from badnets_utils.studies.pool import fixed_threads
tuned = tune_allocator()  # as the command line does, before it trains
with fixed_threads(1):
    r = run(Attack(), Budget(epochs=1, train_limit=2_000, test_limit=500), data_root=sys.argv[1], progress=False)
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in r.model.state_dict().values())).hexdigest()
print(json.dumps({"tuned": tuned, "digest": digest, "tca": r.tca, "asr": r.asr}))
"""


def _run_in_fresh_process(data_root: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, str(data_root)], env=_env_without_allocator_settings(**env),
                         capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc on Linux only")
def test_same_weights_with_and_without_the_setting(mnist_root):
    tuned = _run_in_fresh_process(mnist_root)
    untouched = _run_in_fresh_process(mnist_root, **{allocator.OPT_OUT_ENV: "default"})
    assert tuned["tuned"] is True and untouched["tuned"] is False
    assert tuned["digest"] == untouched["digest"]
    assert (tuned["tca"], tuned["asr"]) == (untouched["tca"], untouched["asr"])


@pytest.mark.parametrize(
    ("env", "chose"),
    [({}, False), ({"BADNETS_MALLOC": "default"}, True), ({"BADNETS_MALLOC": "DEFAULT"}, True),
     ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, True), ({"MALLOC_ARENA_MAX": "2"}, True),
     ({"BADNETS_MALLOC": "tuned"}, False)],
)  # fmt: skip
def test_the_users_own_allocator_settings_win(set_only, env, chose):
    set_only(env)
    assert allocator._user_chose() is chose


def test_set_once_per_process(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {})
    first = allocator.tune_allocator()
    assert allocator.tune_allocator() is first and allocator._state == {"tuned": first}


def test_the_command_line_run_sets_it_and_a_library_import_does_not():
    """Only the training command sets it (measured there); importing the package or a sweep leaves glibc alone."""
    probe = (
        "import sys, badnets_utils, badnets_utils.core.pipeline, badnets_utils._io.allocator as a\n"
        "print(a._state)\n"
        "from badnets_utils.tools import cli\n"
        "try:\n    cli.main(['--epochs', '0'])\nexcept SystemExit:\n    pass\n"
        "print(a._state)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=_env_without_allocator_settings(), capture_output=True,
                         text=True, timeout=120, check=True).stdout.split("\n")  # fmt: skip
    assert out[0] == "{}" and out[1] == ("{'tuned': True}" if GLIBC else "{'tuned': False}")


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
     ({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}, False),
     ({"MALLOC_TRIM_THRESHOLD_": "65536", "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}, False)],
)  # fmt: skip
def test_trim_only_is_dasks_setting_alone(set_only, env, expected):
    set_only(env)
    assert allocator.trim_only() is expected


@pytest.mark.parametrize(
    ("env", "repaired"),
    [({"MALLOC_TRIM_THRESHOLD_": "65536"}, GLIBC), ({}, False),
     ({"MALLOC_TRIM_THRESHOLD_": "65536", "BADNETS_MALLOC": "default"}, False)],
)  # fmt: skip
def test_a_sweep_run_repairs_only_a_trim_only_process(env, repaired):
    """What a run of a sweep does first (``pool.run_job``), in a fresh process started with ``env``."""
    probe = "from badnets_utils._io import allocator\nprint(allocator.repair_trim_only())\n"
    out = subprocess.run([sys.executable, "-c", probe], env=_env_without_allocator_settings(**env),
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == str(repaired)
