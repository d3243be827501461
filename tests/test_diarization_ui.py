"""The web app's "Speakers" choice: the demo call, mixed to mono, gets one lane per voice."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "src" / "emovox" / "ui" / "app.py"


@pytest.mark.slow
def test_speakers_choice_gives_per_speaker_table():
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.radio[0].set_value("Demo call").run()
    assert not at.selectbox  # a stereo call is split by channel first
    at.toggle[0].set_value(False).run()
    at.selectbox[0].set_value("2").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["channel"]) == ["speaker 1", "speaker 2"]
