"""The speed benchmark module: no writes into the installed package; child failures say the fix."""

from __future__ import annotations

import inspect
import os

import pytest

from emovox.errors import EmovoxError
from emovox.evaluation import speed


def test_speed_benchmark_writes_nothing_itself():
    source = inspect.getsource(speed)
    assert "__file__" not in source and "write_text" not in source  # the CLI writes its --docs file


def test_a_failing_child_says_how_to_see_the_error():
    with pytest.raises(EmovoxError, match=r"exited with 3 \(boom\); run it alone .* -c"):
        speed._child("import sys; print('boom', file=sys.stderr); sys.exit(3)", dict(os.environ))
