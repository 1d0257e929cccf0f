"""The launcher of the kernel ``badnets-sandbox``, in which ``nbgrader autograde`` runs every submission.

``classroom DIR --nbgrader`` copies this file to ``DIR/kernels/badnets-sandbox/launch.py`` and names it in that
kernel's ``kernel.json``, which ``DIR/nbgrader_config.py`` selects (``c.Execute.kernel_name``). nbgrader starts it,
with ``python -I``, in the folder of the submission it grades (``autograded/<student>/<assignment>/``, inside the
course). It packs that folder and the kernel's connection file into a tar archive on its standard input, leaves
the course, and replaces itself (``exec``) with::

    $BADNETS_SANDBOX  $BADNETS_SANDBOX_PYTHON -c BOOT  (connection file, nbgrader's kernel arguments)

``BOOT`` unpacks the archive into a new temporary folder, wherever the sandbox command puts it, and starts an
IPython kernel there; the folder is removed when the kernel exits. ``BADNETS_SANDBOX`` is a command prefix that
runs its arguments as another user or in a container (docs/teaching.md, "Autograding in a sandbox"), for example
``sudo -n -u badnets-grader --``; empty or unset, the kernel runs as you (one warning line on stderr): the
submission then starts outside the course, but could still reach it by its absolute path. ``BADNETS_SANDBOX_PYTHON``
is the Python inside (default: the one running this file). The ``BADNETS_*`` variables of the grading shell (quick
mode, the data folder) are passed on inside the archive, and nothing else of its environment.

Only the standard library is used here, and nothing is imported from the submission's folder.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import tarfile
import tempfile

SETTINGS = ".badnets-sandbox.json"  # in the archive: the connection file's name, the kernel's arguments, BADNETS_*
PRIVATE = ("BADNETS_SANDBOX", "BADNETS_SANDBOX_PYTHON")  # the launcher's own settings: not passed on

# Runs inside the sandbox: unpack standard input into a new folder, start the kernel there, remove it afterwards.
BOOT = """\
import sys
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]  # nothing is imported from the folder this starts in
import atexit, json, os, shutil, tarfile, tempfile
folder = tempfile.mkdtemp(prefix="badnets-sandbox-")
atexit.register(shutil.rmtree, folder, True)
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as archive:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(folder, filter="data")
    else:
        archive.extractall(folder)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.chdir(folder)
sys.path.insert(0, folder)  # first, as `python -m ipykernel_launcher` started in the submission's folder has it
with open(".badnets-sandbox.json", encoding="utf-8") as file:
    settings = json.load(file)
os.remove(".badnets-sandbox.json")
os.environ.update(settings["env"])
if not os.access(os.path.expanduser("~"), os.W_OK):
    os.environ["HOME"] = folder  # another user's home: IPython and matplotlib keep their files here instead
sys.argv = ["badnets-sandbox", "-f", os.path.join(folder, settings["connection_file"]), *settings["arguments"]]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


def _plain(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Folders and regular files only: a link in a submission is left out, never followed."""
    return member if member.isfile() or member.isdir() else None


def archive(folder: str, connection_file: str, arguments: list[str], environ: dict[str, str]) -> io.BufferedRandom:
    """A temporary file holding ``folder``'s content, the connection file and the settings ``BOOT`` reads."""
    buffer = tempfile.TemporaryFile()
    name = ".badnets-sandbox-" + os.path.basename(connection_file)
    env = {k: v for k, v in environ.items() if k.startswith("BADNETS_") and k not in PRIVATE}
    settings = json.dumps({"connection_file": name, "arguments": arguments, "env": env}).encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".", filter=_plain)
        tar.add(connection_file, arcname=name)
        info = tarfile.TarInfo(SETTINGS)
        info.size = len(settings)
        tar.addfile(info, io.BytesIO(settings))
    buffer.seek(0)
    return buffer


def command(environ: dict[str, str]) -> list[str]:
    """The sandbox command prefix, then the Python inside it running ``BOOT``."""
    python = environ.get("BADNETS_SANDBOX_PYTHON") or sys.executable
    return [*shlex.split(environ.get("BADNETS_SANDBOX", "")), python, "-c", BOOT]


def main(argv: list[str]) -> None:
    """``launch.py CONNECTION_FILE [KERNEL ARGUMENTS…]``: become the sandboxed kernel (never returns)."""
    if not argv:
        sys.exit("usage: launch.py CONNECTION_FILE [KERNEL ARGUMENTS...] (nbgrader starts this kernel)")
    environ = dict(os.environ)
    argv_out = command(environ)
    if not environ.get("BADNETS_SANDBOX", "").strip():
        print("badnets-sandbox: BADNETS_SANDBOX is not set: this submission runs as you, in a copy outside the "
              "course (docs/teaching.md, 'Autograding in a sandbox')", file=sys.stderr, flush=True)  # fmt: skip
    buffer = archive(os.getcwd(), argv[0], argv[1:], environ)
    os.chdir(tempfile.gettempdir())  # the sandbox starts outside the course
    if os.name == "nt":  # no exec there: wait for the kernel (untested; interrupts reach it through its event)
        import subprocess

        sys.exit(subprocess.call(argv_out, stdin=buffer))
    os.dup2(buffer.fileno(), 0)
    os.execvp(argv_out[0], argv_out)  # nbgrader's signals now reach the sandbox command itself


if __name__ == "__main__":
    main(sys.argv[1:])
