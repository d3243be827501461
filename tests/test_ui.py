"""The web app in real headless Chromium (playwright) against ``streamlit run`` in a subprocess.

Uses Debian's /usr/bin/chromium (never ``playwright install``). One Streamlit server per module;
each test opens a fresh page. Screenshots go to the test's tmp dir. With EMOVOX_UPDATE_SCREENSHOT=1 the app runs the
shipped model and the demo-call screenshot is saved to docs/img/ui.png for the README.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.models.directory import default_model_dir
from emovox.testing import TOY_LABELS, free_port, make_toy_model

from .conftest import SR, speak

pytest.importorskip("streamlit")
pytest.importorskip("altair")
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("EMOVOX_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parents[1]
LABELS = "|".join([*TOY_LABELS, "no_speech"])
MONO_MAX = 330  # px: height of the one-lane timeline (legend, lane, axis)

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt install chromium)", allow_module_level=True)


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit not up after {timeout} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    model = make_toy_model(tmp_path_factory.mktemp("model") / "toy")
    if os.environ.get("EMOVOX_UPDATE_SCREENSHOT") and (default_model_dir() / "model.json").is_file():
        model = default_model_dir()  # the README screenshot shows the shipped model
    log = tmp_path_factory.mktemp("logs") / "streamlit.log"
    port = free_port()
    cmd = [sys.executable, "-m", "emovox", "ui", "--port", str(port)]
    env = {**os.environ, "EMOVOX_MODEL": str(model)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/_stcore/health", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    """What Chromium's fake microphone plays (it loops the file)."""
    return speak("This is a test of the microphone. I am speaking clearly and slowly.",
                 tmp_path_factory.mktemp("mic") / "mic.wav")


@pytest.fixture(scope="module")
def browser(mic_wav):
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic_wav}"]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + fake_mic)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1,
                                  permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _metric(page, label: str) -> str:
    name = page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    box = page.locator('[data-testid="stMetric"]').filter(has=name).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _screenshot(page, path: Path) -> None:
    """The whole app: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate("() => Math.max(document.querySelector('[data-testid=stMain]').scrollHeight, "
                           "document.body.scrollHeight)")
    page.set_viewport_size({"width": 1280, "height": int(height) + 40})
    page.wait_for_timeout(1000)  # let vega re-layout at the new size
    page.screenshot(path=str(path), full_page=True)


def _save_readme_png(src: Path, dst: Path) -> None:
    """Crop the blank bottom, reduce to a 256-colour palette (a small PNG to commit)."""
    from PIL import Image, ImageOps

    img = Image.open(src).convert("RGB")
    box = ImageOps.invert(img).getbbox()  # the non-white area
    if box:
        img = img.crop((0, 0, img.width, min(img.height, box[3] + 24)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, dst)


def _charts_rendered(page, minimum: int) -> None:
    charts = page.locator(".vega-embed")
    page.wait_for_function(f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length >= {minimum}")
    assert charts.count() >= minimum
    box = charts.first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100, box


def test_upload_a_file_shows_emotion_timeline_and_downloads(app_url, page, tmp_path):
    wav = speak("Hello, I am calling about my invoice. It is wrong again and I am really upset about it. "
                "Please fix it today.", tmp_path / "speech.wav")
    page.goto(app_url)
    page.get_by_text("Upload a file, record a few seconds").wait_for()
    page.locator('[data-testid="stFileUploaderDropzone"] input[type="file"]').set_input_files(str(wav))
    page.get_by_text("Dominant emotion").wait_for()
    assert _metric(page, "Dominant emotion") in LABELS.split("|")
    assert _metric(page, "Whole clip") in LABELS.split("|")
    assert page.locator(".vega-embed").first.bounding_box()["height"] < MONO_MAX  # one lane
    _charts_rendered(page, 3)  # timeline, summary, probabilities
    page.locator('[data-testid="stImage"] img').first.wait_for()
    assert page.get_by_role("button", name="Download CSV").is_visible()
    assert page.get_by_role("button", name="Download JSON").is_visible()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV").click()
    header = Path(dl.value.path()).read_text().splitlines()[0]
    assert header.startswith("file,channel,start,end,emotion,confidence,uncertain,p_")
    shot = tmp_path / "ui.png"
    _screenshot(page, shot)
    assert shot.stat().st_size > 10_000


def test_demo_call_has_one_lane_per_channel(app_url, page, tmp_path):
    page.goto(app_url)
    page.get_by_text("Demo call", exact=True).click()
    page.get_by_text("Dominant emotion").wait_for()
    page.get_by_text("Per channel").wait_for()
    _charts_rendered(page, 3)
    # the timeline is the first chart: a second 110 px lane for the second channel
    assert page.locator(".vega-embed").first.bounding_box()["height"] > MONO_MAX + 80, "one lane per channel"
    assert page.get_by_role("heading", name="Per channel").is_visible()
    _screenshot(page, tmp_path / "demo.png")
    if os.environ.get("EMOVOX_UPDATE_SCREENSHOT"):
        _save_readme_png(tmp_path / "demo.png", REPO / "docs" / "img" / "ui.png")


def test_unreadable_upload_shows_an_error_not_a_traceback(app_url, page, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all" * 20)
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(2 * SR, np.float32), SR)
    page.goto(app_url)
    page.get_by_text("Upload a file, record a few seconds").wait_for()
    page.locator('[data-testid="stFileUploaderDropzone"] input[type="file"]').set_input_files(str(bad))
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="not a readable audio file")
    alert.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


def test_record_from_the_microphone(app_url, page):
    page.goto(app_url)
    page.get_by_text("Record", exact=True).click()
    page.get_by_role("button", name="Record").click()
    page.wait_for_timeout(3500)  # Chromium's fake microphone plays the espeak-ng file
    page.get_by_role("button", name="Stop recording").click()
    page.get_by_text("Dominant emotion").wait_for()
    speech = _metric(page, "Speech")
    assert speech.endswith(" s") and float(speech[:-2]) > 1.0, speech
    _charts_rendered(page, 2)
