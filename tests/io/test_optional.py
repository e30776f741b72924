"""The ``[ros]`` extra stays optional: the core never imports it, and a missing package says how to install it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pcctrl.cli import main
from pcctrl.io import require


def test_missing_extra_names_the_install_command():
    with pytest.raises(ImportError, match=r"pip install 'pcctrl\[ros\]'"):
        require("zenoh_not_installed_here")


def test_core_import_does_not_pull_the_ros_packages():
    code = ("import sys, pcctrl, pcctrl.io, pcctrl.cli, pcctrl.runtime; "
            "print(sorted(m for m in ('rosbags', 'mcap', 'zenoh') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_without_the_extra_prints_the_install_line(tmp_path, capsys):
    blocker = tmp_path / "block" / "rosbags"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('not installed', name='rosbags')\n")
    code = ("import sys; from pcctrl.cli import main; sys.exit(main(['fit', 'x', '--state', '/s', '--obs-topic', "
            "'/o', '--action-topic', '/a', '--dt', '0.1', '--out', 'm.pt']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path / "block"), "PATH": ""})
    assert done.returncode == 2
    assert "pip install 'pcctrl[ros]'" in done.stderr and "Traceback" not in done.stderr


def test_serve_parser_keeps_the_other_commands():
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
