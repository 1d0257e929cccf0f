"""Export a checkpoint to ONNX for the browser: ``python -m badnets_utils export-onnx CHECKPOINT OUT``.

The graph takes **raw pixels**: a uint8 tensor ``pixels`` of shape (batch, C, H, W) with values 0..255 — the bytes
of the images, exactly what the BadNet itself takes — and does the rest inside: the division by 255 and the
dataset's normalisation (the model's own ``normalize``), the network, and a softmax. It has two outputs,
``logits`` (batch, K) and ``probabilities`` (batch, K). The batch size is free.

The checkpoint is loaded as every checkpoint of the project is (``load_checkpoint``: SHA-256 against the manifest
when it lists the file, then ``torch.load(weights_only=True)``). The export is ``torch.onnx.export(dynamo=True)``;
before anything is written, onnxruntime runs the exported graph on a seeded batch of images and its logits are
compared with PyTorch's. Bad input — a missing, corrupt or modified checkpoint, an output that is not a ``.onnx``
file, a shipped file, a folder — is one line on stderr and exit status 2, with nothing written.

Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (the ``docs`` extra: ``pip install -e ".[docs]"``); the course
website's build (``docs/_ext/playground.py``) exports the shipped MNIST models with it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from badnets_utils import load_checkpoint
from badnets_utils._io.files import atomic_write, check_writable, shown
from badnets_utils.tools.argparsing import Parser, RawDefaultsFormatter, run_command

INPUT = "pixels"
OUTPUTS = ("logits", "probabilities")
CHECK_IMAGES = 64  # the seeded batch the export is checked on before it is written
CHECK_SEED = 0
TOLERANCE = 1e-4  # the largest difference allowed between onnxruntime's logits and PyTorch's
NEEDS = ("onnx", "onnxscript", "onnxruntime")


class RawPixels(nn.Module):
    """A BadNet that takes uint8 pixels (0..255) and returns (logits, probabilities): the graph that is exported."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(pixels)  # the BadNet normalises uint8 input itself: / 255, then (x - mean) / std
        return logits, torch.softmax(logits, dim=1)


def missing_packages() -> list[str]:
    """The packages the export needs that are not installed."""
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def _require_packages() -> None:
    missing = missing_packages()
    if missing:
        raise ValueError(f"export-onnx needs {', '.join(missing)}: pip install -e \".[docs]\" (or pip install "
                         f"{' '.join(missing)})")  # fmt: skip


def input_shape(model: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) of the images ``model`` (a BadNet) takes."""
    config = model.config
    return config["in_channels"], config["image_size"], config["image_size"]


def export_model(model: nn.Module) -> bytes:
    """The ONNX model (serialised ModelProto) of ``model`` taking raw uint8 pixels, any batch size."""
    _require_packages()
    wrapped = RawPixels(model).eval()
    example = torch.zeros(2, *input_shape(model), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=2**20)
    # the exporter reports its progress and notes through warnings and logging: the command prints its own line
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "torch.export", "onnxscript"), \
            contextlib.redirect_stdout(io.StringIO()):  # fmt: skip
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapped, (example,), dynamo=True, input_names=[INPUT], output_names=list(OUTPUTS),
                                    dynamic_shapes={"pixels": {0: batch}}, verbose=False)  # fmt: skip
    return program.model_proto.SerializeToString()


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def session(onnx_bytes: bytes):
    """An onnxruntime CPU session on a serialised ONNX model."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_logits(sess, images: torch.Tensor) -> torch.Tensor:
    """onnxruntime's logits of uint8 ``images`` (N, C, H, W)."""
    logits, _ = sess.run(list(OUTPUTS), {INPUT: images.contiguous().numpy()})
    return torch.from_numpy(logits)


def check_images(model: nn.Module, n: int = CHECK_IMAGES, seed: int = CHECK_SEED) -> torch.Tensor:
    """The seeded batch an export is checked on: all-black, all-white, then uniform noise."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *input_shape(model)), generator=g, dtype=torch.uint8)
    images[0], images[1] = 0, 255
    return images


def largest_difference(model: nn.Module, onnx_bytes: bytes, images: torch.Tensor) -> float:
    """max |onnxruntime's logits - PyTorch's| on ``images``."""
    with torch.no_grad():
        expected = model(images)
    return float((onnx_logits(session(onnx_bytes), images) - expected).abs().max())


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, manifest=None) -> dict:
    """Export ``checkpoint`` to ``out`` (checked first; written atomically, only once the export is checked).

    Returns what was done: ``out``, ``sha256`` and ``bytes`` of the ONNX file, ``dataset``, ``verified`` (the
    checkpoint matched a manifest), ``difference`` (the largest logit difference on the check batch).
    """
    out = check_output(out)
    _require_packages()
    model, config = load_checkpoint(checkpoint, manifest=manifest, quiet=True)
    data = export_model(model)
    difference = largest_difference(model, data, check_images(model))
    if not difference <= TOLERANCE:  # NaN included
        raise ValueError(f"the exported graph of {shown(checkpoint)} differs from PyTorch by {difference:.3g} on the "
                         f"check images (allowed: {TOLERANCE:g}); nothing written")  # fmt: skip
    atomic_write(out, lambda f: f.write(data))
    return {"out": out, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "dataset": config["dataset"],
            "verified": config["verified"], "difference": difference}  # fmt: skip


def check_output(out: str | os.PathLike) -> Path:
    """``out`` can take the ONNX file: named ``*.onnx``, not a shipped file, not a folder or other non-file, and the
    deepest of its folders that exists is a writable folder (the missing ones are made when the file is written).
    Nothing is made."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"OUT {shown(out)} must be a file name ending in .onnx")
    check_writable(out.parent, out)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="badnets export-onnx", description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("checkpoint", help="a checkpoint (.pth) of a BadNet, e.g. checkpoints/badnet-MNIST.pth")
    p.add_argument("out", help="the ONNX file to write, e.g. runs/badnet-MNIST.onnx")
    p.add_argument("--manifest", default=None, help="a MANIFEST.json you trust, to verify a checkpoint that the "
                   "project's manifest does not list")  # fmt: skip
    return p


def _run(args: argparse.Namespace) -> int:
    done = export_checkpoint(args.checkpoint, args.out, args.manifest)
    how = "verified" if done["verified"] else "unverified: no manifest lists it"
    print(f"Wrote {shown(done['out'])} ({done['bytes']:,} bytes, SHA-256 {done['sha256']}) from "
          f"{shown(args.checkpoint)} ({how}); input: uint8 pixels 0..255; largest logit difference from PyTorch on "
          f"{CHECK_IMAGES} check images: {done['difference']:.3g}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """``badnets export-onnx CHECKPOINT OUT``; errors: one line on stderr, exit 2."""
    return run_command(build_parser(), argv, _run, (ValueError, OSError))
