"""Packaging: pyproject and environment.yml agree; CI runs the README's test command."""

import re
from pathlib import Path

import tomllib
import yaml
from conftest import MACHINE_PATHS

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {d for d in pip_deps if not d.startswith("-e")}
    assert {_name(d): d for d in listed} == {_name(d): d for d in wanted}


def test_pins_admit_the_tested_torch():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if _name(d) == "torch")
    vision_req = next(d for d in deps if _name(d) == "torchvision")
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    assert "2.14.1" in SpecifierSet(torch_req[len("torch") :])
    assert "0.29.1" in SpecifierSet(vision_req[len("torchvision") :])
    assert version("torch").split("+")[0] in SpecifierSet(torch_req[len("torch") :])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\n```bash\n(.+?)\n```\n<!-- /test-command -->", readme, re.S)
    assert block and "pytest" in block.group(1) and "BADNETS_QUICK=1" in block.group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci


def test_readme_quick_start_has_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start")[1].split("\n## ")[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "python -m badnets_utils" in commands[0]


def test_no_machine_paths_in_tracked_text():
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files = files or [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
    for name in files:
        path = ROOT / name
        if path.is_file() and path.suffix in {".py", ".md", ".toml", ".yml", ".json", ".ipynb", ".csv", ""}:
            assert not MACHINE_PATHS.search(path.read_text(errors="ignore")), path
