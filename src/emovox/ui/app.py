"""The emovox web app (Streamlit). Run it with ``emovox ui`` (= ``streamlit run`` on this file).

Upload audio in any format, record from the microphone, or open the bundled demo call; the app
shows the dominant emotion, an interactive timeline over the waveform (one lane per channel of a
stereo call), the per-emotion summary, a spectrogram, and CSV/JSON downloads. Every result comes
from :mod:`emovox.inference` in this process; the Predictor is loaded once (``st.cache_resource``).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import streamlit as st

from emovox import __version__
from emovox.audio import SAMPLE_RATE, load
from emovox.errors import EmovoxError
from emovox.inference import Analysis, Predictor, analyze
from emovox.inference.outputs import segment_rows
from emovox.ui.charts import probability_chart, spectrogram_image, summary_chart, timeline_chart

MAX_SECONDS = 30 * 60
SOURCES = ("Upload a file", "Record", "Demo call")
#: The "Speakers" choice: what it shows, and the count it asks :func:`analyze` for.
SPEAKER_CHOICES: dict[str, int | Literal["auto"] | None] = {"one timeline": None, "2": 2, "3": 3, "auto": "auto"}


@st.cache_resource(show_spinner="Loading the model…")
def get_predictor(model_dir: str | None) -> Predictor:
    return Predictor.load(model_dir)


@st.cache_data(show_spinner=False, max_entries=4)
def demo_call() -> tuple[bytes, str]:
    """The demo call: the shipped copy, else synthesised with espeak-ng."""
    from emovox.evaluation.demo import shipped_demo_path, write_demo_call

    path = shipped_demo_path()
    if path.is_file():
        return path.read_bytes(), path.name
    with tempfile.TemporaryDirectory() as tmp:
        return write_demo_call(Path(tmp) / "demo_call.wav").read_bytes(), "demo_call.wav"


@st.cache_data(show_spinner=False, max_entries=8)
def decode(data: bytes) -> np.ndarray:
    return load(data, channels="split")


@st.cache_data(show_spinner=False, max_entries=8)
def run_analysis(data: bytes, name: str, channels: str, model_dir: str | None,
                 speakers: int | Literal["auto"] | None = None) -> tuple[Analysis, dict]:
    """Timeline + summary, and the whole-clip prediction (of the mix)."""
    predictor = get_predictor(model_dir)
    y = decode(data)
    result = analyze(y, predictor=predictor, channels=channels, name=name, speakers=speakers)
    clip = predictor.predict(y.mean(axis=0))
    return result, {"emotion": clip.label, "confidence": clip.confidence, "uncertain": clip.uncertain,
                    "probabilities": clip.probabilities}


def to_csv(result: Analysis) -> bytes:
    columns, rows = segment_rows(result)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def pick_source() -> tuple[bytes | None, str]:
    """The audio the user chose, as bytes, and its name."""
    source = st.radio("Audio", SOURCES, horizontal=True, label_visibility="collapsed")
    if source == "Upload a file":
        f = st.file_uploader("Audio file (wav, flac, mp3, ogg, m4a, webm, …)", type=None)
        return (f.getvalue(), f.name) if f else (None, "")
    if source == "Record":
        rec = st.audio_input("Record from your microphone")
        return (rec.getvalue(), "recording.wav") if rec else (None, "")
    st.caption("A one-minute mock support call spoken by espeak-ng voices: agent on the left channel, "
               "customer on the right. Synthetic speech is not acted emotion; it shows the pipeline.")
    try:
        return demo_call()
    except EmovoxError as exc:
        st.error(f"The demo call is not available: {exc}")
        return None, ""


def show_headline(result: Analysis, clip: dict) -> None:
    s = result.summary
    dominant = s["dominant_emotion"]
    share = s["emotion_share"].get(dominant, 0.0)
    cols = st.columns(4)
    cols[0].metric("Dominant emotion", dominant, f"{share:.0%} of speech" if dominant != "no_speech" else None,
                   delta_color="off", delta_arrow="off")
    flag = " (uncertain)" if clip["uncertain"] else ""
    cols[1].metric("Whole clip", clip["emotion"], f"confidence {clip['confidence']:.2f}{flag}", delta_color="off", delta_arrow="off")
    cols[2].metric("Speech", f"{s['speech_seconds']:.1f} s", f"of {s['duration']:.1f} s", delta_color="off", delta_arrow="off")
    cols[3].metric("Segments", s["segments"], f"{s['uncertain_share']:.0%} uncertain", delta_color="off", delta_arrow="off")


def show_summary(result: Analysis, clip: dict) -> None:
    s = result.summary
    left, right = st.columns(2)
    with left:
        st.subheader("Emotions over the speech time")
        st.altair_chart(summary_chart(s, result.labels), width="stretch")
    with right:
        st.subheader("Whole-clip probabilities")
        if clip["probabilities"]:
            st.altair_chart(probability_chart(clip["probabilities"], result.labels), width="stretch")
        else:
            st.info("Too little speech in this audio for an emotion (no_speech).")
    per = s.get("per_channel")
    if per:
        st.subheader("Per channel")
        st.dataframe([{"channel": name, "dominant": v["dominant_emotion"], "speech (s)": v["speech_seconds"],
                       "negative share": f"{v['negative_share']:.0%}",
                       **{k: f"{p:.0%}" for k, p in v["emotion_share"].items()}} for name, v in per.items()],
                     hide_index=True, width="stretch")
    peaks = [(kind, p) for kind, items in s.get("peaks", {}).items() for p in items]
    if peaks:
        st.caption("Peaks: " + "; ".join(f"{kind} on {p['channel']} at {p['start']:.1f}–{p['end']:.1f} s "
                                         f"({p['score']:.2f})" for kind, p in peaks))


def show_downloads(result: Analysis) -> None:
    stem = Path(result.file).stem or "analysis"
    row = st.container(horizontal=True)
    row.download_button("Download CSV", to_csv(result), f"{stem}.emotions.csv", "text/csv", on_click="ignore")
    row.download_button("Download JSON", result.to_json(), f"{stem}.emotions.json", "application/json",
                 on_click="ignore")


def main() -> None:
    st.set_page_config(page_title="emovox", page_icon="🎙️", layout="wide")
    model_dir = os.environ.get("EMOVOX_MODEL") or None
    st.title("emovox: emotions in speech")
    try:
        predictor = get_predictor(model_dir)
    except EmovoxError as exc:
        st.error(f"Cannot load the model: {exc}")
        st.stop()
    st.caption(f"emovox {__version__} · model {predictor.card.name} {predictor.card.version} · "
               f"labels: {', '.join(predictor.labels)}")
    data, name = pick_source()
    if not data:
        st.info("Upload a file, record a few seconds, or open the demo call.")
        return
    try:
        y = decode(data)
    except EmovoxError as exc:
        st.error(str(exc))
        return
    seconds = y.shape[1] / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        st.error(f"{name}: {seconds / 60:.0f} min long; the web app takes up to {MAX_SECONDS // 60} min "
                 "(use `emovox analyze` or the API for longer recordings).")
        return
    channels = "mix"
    if y.shape[0] >= 2:
        split = st.toggle("Analyse each channel separately (stereo call: agent left, customer right)", value=True)
        channels = "split" if split else "mix"
    speakers = None
    if channels == "mix":
        pick = st.selectbox("Speakers: tell the voices of the recording apart", list(SPEAKER_CHOICES),
                            help="Each voice gets its own lane (speaker 1, speaker 2, ... in order of first appearance).")
        speakers = SPEAKER_CHOICES[pick]
    st.audio(data)
    with st.spinner("Analysing…"):
        try:
            result, clip = run_analysis(data, name, channels, model_dir, speakers)
        except EmovoxError as exc:
            st.error(str(exc))
            return
    if (result.summary.get("speakers") or {}).get("message"):
        st.info(result.summary["speakers"]["message"])
    show_headline(result, clip)
    st.subheader("Timeline")
    st.caption("Coloured bands: the emotion of each speech segment, paler when uncertain (hover for "
               "probabilities; drag to zoom, double-click to reset). Dark: the waveform envelope.")
    st.altair_chart(timeline_chart(result), width="stretch")
    show_summary(result, clip)
    st.subheader("Spectrogram (log-mel)")
    st.image(spectrogram_image(y.mean(axis=0)), width="stretch", clamp=True)
    show_downloads(result)
    with st.expander(f"All {len(result.segments)} segments"):
        st.dataframe(segment_rows(result)[1], hide_index=True, width="stretch")


main()
