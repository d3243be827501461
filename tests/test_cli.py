"""The emovox command: help, version, exit codes, and the datasets inventory."""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile as sf

from emovox import __version__
from emovox.cli import COMMANDS, main

from .conftest import tone


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emovox", *args], capture_output=True, text=True, timeout=300)


def test_version_and_help():
    r = run_cli("--version")
    assert r.returncode == 0 and __version__ in r.stdout
    r = run_cli("--help")
    assert r.returncode == 0
    assert all(name in r.stdout for name in COMMANDS)


def test_no_command_and_unknown_command_are_usage_errors():
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2


def test_datasets_missing_folder_exit_3(tmp_path, capsys):
    assert main(["datasets", "--data", str(tmp_path / "nope")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data folder not found" in err


def test_datasets_on_fixture(tmp_path, capsys):
    for name in ["Actor_01/03-01-05-01-01-01-01.wav", "Actor_02/03-01-03-01-01-01-02.wav", "Actor_02/bad.wav"]:
        path = tmp_path / "ravdess" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(seconds=0.5), 16000)
    assert main(["datasets", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ravdess" in out and "could not be parsed" in out and "bad.wav" in out


@pytest.mark.corpus
def test_datasets_real_counts(corpus_root):
    r = run_cli("datasets", "--data", str(corpus_root))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in r.stdout.splitlines() if line and line.split()[0] in {"ravdess", "tess", "savee", "crema-d"}}
    assert rows == {"ravdess": ["1440", "24"], "tess": ["2800", "2"], "savee": ["480", "4"], "crema-d": ["5721", "70"]}
