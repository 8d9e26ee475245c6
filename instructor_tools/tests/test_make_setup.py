"""The Makefile's set-up: a Python too old is refused before anything is created, a .venv
left by an interrupted install is made again, a .venv someone else made is never deleted,
and `make lab` passes its options through.

The venv tests run the real Makefile in a temporary folder with fake Pythons (shell scripts
that print a version, "create" a venv and log pip calls), so they need no network and no
second Python installed.
"""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

# A stand-in for a Python interpreter, as far as the Makefile uses one:
#   -c CODE        prints the version X.Y (the Makefile asks only for that)
#   -m venv DIR    makes DIR/bin/python, a copy of this script (so it reports the same version)
#   -m pip ...     logs its arguments to $FAKE_PIP_LOG; fails when $FAKE_PIP_FAIL is set
FAKE_PYTHON = """#!/bin/sh
case "$1" in
  -c) echo {version} ;;
  -m)
    case "$2" in
      venv) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
      pip) echo "$*" >> "$FAKE_PIP_LOG"; [ -z "$FAKE_PIP_FAIL" ] ;;
      *) exit 2 ;;
    esac ;;
  *) exit 2 ;;
esac
"""


def write_fake_python(path, version):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON.format(version=version))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def project(tmp_path):
    """A folder with the Makefile and the two files its venv rule depends on."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, proj / name)
    return proj


def make(project, *args, **env):
    full_env = {**os.environ, "FAKE_PIP_LOG": str(project / "pip.log"), **env}
    # MAKEFLAGS from an outer make (e.g. `make test`) would change how this one runs.
    full_env.pop("MAKEFLAGS", None)
    full_env.pop("MFLAGS", None)
    return subprocess.run(["make", "--no-print-directory", *args], cwd=project, env=full_env,
                          capture_output=True, text=True)


def test_too_old_python_is_refused_and_nothing_is_created(project, tmp_path):
    old = write_fake_python(tmp_path / "bin" / "python3.10", "3.10")
    run = make(project, "venv", f"PYTHON={old}")
    assert run.returncode != 0
    assert "needs Python >= 3.11" in run.stderr and "is Python 3.10" in run.stderr, run.stderr
    assert "PYTHON=python3.11" in run.stderr  # says what to do
    assert not (project / ".venv").exists()
    assert not (project / "pip.log").exists()


def test_a_python_that_does_not_run_is_refused(project):
    run = make(project, "venv", "PYTHON=/nonexistent/python3")
    assert run.returncode != 0
    assert "not a Python that runs" in run.stderr, run.stderr
    assert not (project / ".venv").exists()


def test_minimum_in_makefile_matches_pyproject(project):
    """One requirement, said twice: make's MIN_PYTHON and pyproject's requires-python."""
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    run = make(project, "-p", "-n", "venv", "PYTHON=/nonexistent/python3")
    line = next(l for l in run.stdout.splitlines() if l.startswith("MIN_PYTHON :="))
    assert requires == ">=" + line.split(":=")[1].strip()


def test_new_enough_python_makes_venv_and_installs(project, tmp_path):
    new = write_fake_python(tmp_path / "bin" / "python3.12", "3.12")
    run = make(project, "venv", f"PYTHON={new}")
    assert run.returncode == 0, run.stderr
    venv = project / ".venv"
    assert (venv / ".installed").is_file() and (venv / ".made-by-make").is_file()
    log = (project / "pip.log").read_text()
    assert "-r requirements.txt" in log and "-e ." in log
    # Up to date now: a second run does nothing.
    again = make(project, "venv", f"PYTHON={new}")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout


def test_interrupted_install_is_made_again(project, tmp_path):
    new = write_fake_python(tmp_path / "bin" / "python3.12", "3.12")
    failed = make(project, "venv", f"PYTHON={new}", FAKE_PIP_FAIL="1")
    assert failed.returncode != 0
    venv = project / ".venv"
    assert (venv / ".made-by-make").is_file() and not (venv / ".installed").exists()
    (venv / "half-installed-package").write_text("left by the failed install")

    run = make(project, "venv", f"PYTHON={new}")
    assert run.returncode == 0, run.stderr
    assert "did not finish" in run.stdout
    assert (venv / ".installed").is_file()
    assert not (venv / "half-installed-package").exists()  # made again from nothing


def test_old_venv_made_by_make_is_replaced_when_unfinished(project, tmp_path):
    """The issue's case: `make venv PYTHON=python3.10` used to leave a 3.10 .venv behind."""
    venv = project / ".venv"
    write_fake_python(venv / "bin" / "python", "3.10")
    (venv / ".made-by-make").touch()
    new = write_fake_python(tmp_path / "bin" / "python3.12", "3.12")
    run = make(project, "venv", f"PYTHON={new}")
    assert run.returncode == 0, run.stderr
    assert make(project, "venv").returncode == 0
    assert "echo 3.12" in (venv / "bin" / "python").read_text()


def test_venv_made_by_someone_else_is_used_not_deleted(project, tmp_path):
    venv = project / ".venv"
    write_fake_python(venv / "bin" / "python", "3.11")
    (venv / "mine.txt").write_text("the student's own venv")
    run = make(project, "venv", "PYTHON=/nonexistent/python3")
    assert run.returncode == 0, run.stderr
    assert (venv / "mine.txt").read_text() == "the student's own venv"
    assert (venv / ".installed").is_file()


def test_venv_made_by_someone_else_with_old_python_is_left_alone(project, tmp_path):
    venv = project / ".venv"
    write_fake_python(venv / "bin" / "python", "3.10")
    (venv / "mine.txt").write_text("the student's own venv")
    new = write_fake_python(tmp_path / "bin" / "python3.12", "3.12")
    run = make(project, "venv", f"PYTHON={new}")
    assert run.returncode != 0
    assert "runs Python 3.10" in run.stderr and "mv .venv .venv.old" in run.stderr, run.stderr
    assert (venv / "mine.txt").exists() and "echo 3.10" in (venv / "bin" / "python").read_text()
    assert not (project / "pip.log").exists()


def test_lab_passes_options_through_and_allows_root():
    run = subprocess.run(
        ["make", "-n", "--no-print-directory", "lab", "LAB_ARGS=--no-browser --port 8899"],
        cwd=ROOT, capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                       if k not in ("MAKEFLAGS", "MFLAGS")})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    imports = [l for l in lines if "jupyter lab workspaces import " in l]
    launch = [l for l in lines if "jupyter lab " in l and l not in imports]
    assert len(launch) == 1, run.stdout
    assert launch[0].rstrip().endswith("--no-browser --port 8899")
    assert ("--allow-root" in launch[0]) == (os.geteuid() == 0)
    # Both notebooks come from the workspace it imports (opened in a browser in
    # test_jupyterlab.py).
    assert len(imports) == 1, run.stdout
