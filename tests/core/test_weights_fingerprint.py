"""The same seeded runs give the same weights to the last bit, before and after a change of the code's layout.

``tests/core/weights_fingerprints.json`` holds the SHA-256 of the weights of a quick run and of a default-size run
(the command line's defaults), recorded with this torch build on this CPU class; a refactoring that claims
"behaviour unchanged" must leave them equal. Regenerate with ``python tests/core/test_weights_fingerprint.py`` only when
training is meant to change, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from badnets_utils import Attack, Budget, run
from badnets_utils.studies.pool import fixed_threads

RECORD = Path(__file__).parent / "weights_fingerprints.json"
RUNS = {
    "quick": Budget(epochs=1, train_limit=2000, test_limit=500, device="cpu"),
    "default": Budget(device="cpu"),  # the command line's default run: 4 epochs on all 60,000 images
}


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def measure(name: str, data_root=None) -> dict:
    with fixed_threads():  # one thread: the bits do not depend on the machine's load
        result = run(Attack(), RUNS[name], data_root=data_root, progress=False)
    return {"sha256": fingerprint(result.model), "tca": result.tca, "asr": result.asr}


def platform() -> dict:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


@pytest.mark.parametrize("name", list(RUNS))
def test_seeded_runs_give_the_recorded_weights(name, mnist_root):
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    if record["platform"] != platform():  # other kernels give other (equally valid) bits
        pytest.skip(f"recorded on {record['platform']}, this is {platform()}")
    assert measure(name, mnist_root) == record["runs"][name]


if __name__ == "__main__":
    from badnets_utils._io.files import atomic_write_text

    runs = {name: measure(name) for name in RUNS}
    atomic_write_text(RECORD, json.dumps({"platform": platform(), "runs": runs}, indent=1) + "\n")
    print(json.dumps(runs, indent=1), file=sys.stderr)
