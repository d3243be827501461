"""Speed benchmark of the inference path (``emovox benchmark --speed`` calls :func:`speed_benchmark`).

On ``hours`` of synthetic speech (espeak-ng utterances with pauses, tiled) it times each stage
of :func:`~emovox.inference.analyze` separately -- decode (FLAC and MP3), VAD, log-mel, model --
then the whole pipeline end to end; the cold start of ``emovox predict clip.wav`` in a fresh
process; and the peak memory (max RSS) of ``emovox analyze`` on a file twice as long.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE, stream
from ..errors import EmovoxError, MissingDependencyError
from ..inference.analysis import analyze
from ..inference.predictor import Predictor, single_thread_blas
from ..inference.segmentation import SegmentConfig, Segmenter, split_turn
from ..inference.vad import FRAME_SAMPLES, FrameVAD
from .demo import SCRIPT, make_demo_call

__all__ = ["run_speed_benchmark", "speed_benchmark", "format_speed_report", "synthetic_speech"]


def synthetic_speech(seconds: float) -> np.ndarray:
    """``seconds`` of mono 16 kHz speech: the demo call's two channels mixed, tiled."""
    call = make_demo_call(SCRIPT).mean(axis=0).astype(np.float32)
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(call)))
    return np.tile(call, reps)[: int(seconds * SAMPLE_RATE)]


def _write(y: np.ndarray, path: Path) -> Path:
    fmt = {".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III"), ".wav": ("WAV", "PCM_16")}
    kind, sub = fmt[path.suffix]
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, format=kind, subtype=sub) as f:
        for i in range(0, len(y), 60 * SAMPLE_RATE):
            f.write(y[i : i + 60 * SAMPLE_RATE])
    return path


_CPU: dict[str, float] = {}


def _timed(fn, *args, key: str | None = None, **kwargs) -> tuple[float, object]:
    """Wall seconds of ``fn(...)``; its CPU seconds (all threads) go to ``_CPU[key]``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    if key:
        _CPU[key] = time.process_time() - c0
    return time.perf_counter() - t0, out


def _decode(path: Path) -> np.ndarray:
    return np.concatenate(list(stream(path, block_seconds=60.0)))


def _stages(predictor: Predictor, y: np.ndarray) -> dict:
    """Seconds spent in VAD, log-mel and the model on ``y`` (as analyze does them)."""
    c0, t0 = time.process_time(), time.perf_counter()
    mask = FrameVAD(aggressiveness=predictor.vad_aggressiveness).process(y)
    t_vad, c_vad = time.perf_counter() - t0, time.process_time() - c0
    seg = Segmenter(SegmentConfig())
    turns = [(a * FRAME_SAMPLES, b * FRAME_SAMPLES) for a, b in seg.feed(mask) + seg.flush()]
    c0, t0 = time.process_time(), time.perf_counter()
    x: list[np.ndarray] = []
    for a, b in turns:
        parts = split_turn(a, b, window=predictor.window_samples, hop=predictor.hop_samples)
        x.extend(predictor.window_inputs(y[a:b], [(w0 - a, w1 - a) for _, _, w0, w1 in parts]))
    t_logmel, c_logmel = time.perf_counter() - t0, time.process_time() - c0
    t_model, _ = _timed(predictor.logits, x, key="model")
    return {"t_vad": t_vad, "t_logmel": t_logmel, "t_model": t_model,
            "cpu_vad": c_vad, "cpu_logmel": c_logmel, "cpu_model": _CPU["model"], "windows": len(x), "turns": len(turns),
            "speech_seconds": sum(b - a for a, b in turns) / SAMPLE_RATE}


def _child(code: str, env: dict) -> tuple[float, float, float]:
    """Run python ``code`` in a fresh process: (wall s, CPU s, peak RSS MB).

    The peak is the child's own ``VmHWM`` (printed by the child as its last line), because
    ``ru_maxrss`` of a forked child also counts the parent's pages from before ``exec``.
    """
    probe = ("\nimport sys\nprint('VmHWM', [l.split()[1] for l in open('/proc/self/status') "
             "if l.startswith('VmHWM')][0], file=sys.stderr)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code + probe], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-300:]
        raise EmovoxError(f"speed benchmark: a child process exited with {proc.returncode} ({tail}); "
                          f"run it alone to see the whole error: {sys.executable} -c {code!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = [ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("VmHWM")]
    return wall, cpu, float(peak[-1]) / 1024.0 if peak else float("nan")


def run_speed_benchmark(*, model_dir: str | os.PathLike | None = None, hours: float = 1.0,
                        threads: int = 2, int8: bool = False, memory_hours: float = 2.0,
                        workdir: str | os.PathLike | None = None) -> dict:
    """Measure the inference pipeline; returns a dict of figures (see :func:`format_speed_report`).

    Parameters
    ----------
    model_dir : model directory (None: the shipped model)
    hours : length of the synthetic recording timed stage by stage and end to end
    threads : ONNX Runtime threads (the reference machine has 2 cores)
    memory_hours : length of the file whose ``analyze`` peak memory is measured (0: skip)
    """
    import shutil

    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError("the speed benchmark synthesises speech with espeak-ng: apt install espeak-ng")
    predictor = Predictor.load(model_dir, int8=int8, threads=threads)
    tmp_ctx = tempfile.TemporaryDirectory() if workdir is None else None
    work = Path(workdir or tmp_ctx.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    try:
        y = synthetic_speech(hours * 3600)
        flac, mp3 = _write(y, work / "speech.flac"), _write(y, work / "speech.mp3")
        res: dict = {"hours": hours, "threads": threads, "int8": int8, "model": predictor.card.name,
                     "kind": predictor.card.kind,
                     "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()[0]}
        res["decode_flac"], y_flac = _timed(_decode, flac, key="decode_flac")
        res["decode_mp3"], _ = _timed(_decode, mp3)
        with single_thread_blas():  # as analyze() runs them
            res.update(_stages(predictor, y_flac))  # type: ignore[arg-type]
        res["end_to_end_flac"], result = _timed(analyze, flac, predictor=predictor, key="end_to_end_flac")
        res["end_to_end_mp3"], _ = _timed(analyze, mp3, predictor=predictor)
        res["end_to_end_flac_no_overlap"], _ = _timed(analyze, flac, predictor=predictor,
                                                      hop_seconds=predictor.card.window_seconds)
        res["segments"] = len(result.segments)  # type: ignore[attr-defined]
        res["cpu_decode_flac"], res["cpu_end_to_end_flac"] = _CPU["decode_flac"], _CPU["end_to_end_flac"]
        env = dict(os.environ)
        clip = work / "clip.wav"
        sf.write(clip, y[: 4 * SAMPLE_RATE], SAMPLE_RATE)
        model_arg = [] if model_dir is None else ["--model", str(model_dir)]
        cli = f"from emovox.cli import main; code = main({['predict', str(clip), *model_arg]!r}); assert code == 0"
        colds = [_child(cli, env) for _ in range(3)]
        res["cold_start_predict"] = float(np.median([c[0] for c in colds]))
        res["cold_start_predict_cpu"] = float(np.median([c[1] for c in colds]))
        if memory_hours:
            long = _write(synthetic_speech(memory_hours * 3600), work / "long.flac")
            code = (f"from emovox.inference import analyze, Predictor; "
                    f"analyze({str(long)!r}, predictor=Predictor.load({None if model_dir is None else str(model_dir)!r}, threads={threads}))")
            res["memory_hours"] = memory_hours
            res["memory_wall"], _, res["peak_rss_mb"] = _child(code, env)
        return res
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()


#: Targets per model kind (issue 12): the default model, and the edge model at >= 1000x real time.
SPEED_TARGETS = {"whisper_ser": {"hour": 12.0, "cold": 1.5}, "whisper_embed": {"hour": 12.0, "cold": 1.5}, "logmel_cnn": {"hour": 3.6, "cold": 1.0}}


def format_speed_report(res: dict) -> str:
    """A Markdown table of :func:`run_speed_benchmark`'s figures."""
    per_hour = 1.0 / res["hours"]
    target = SPEED_TARGETS.get(res.get("kind", ""), SPEED_TARGETS["whisper_ser"])
    hour, cold = f"<= {target['hour']:g} s", f"<= {target['cold']:g} s"
    stages = [("decode (FLAC)", res["decode_flac"], res["cpu_decode_flac"]),
              ("VAD", res["t_vad"], res["cpu_vad"]), ("log-mel", res["t_logmel"], res["cpu_logmel"]),
              ("model", res["t_model"], res["cpu_model"])]
    total = sum(c for _, _, c in stages)
    lines = ["| stage | wall s per hour of audio | CPU s per hour (all threads) | share of CPU |",
             "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t * per_hour:.2f} | {c * per_hour:.2f} | {100 * c / total:.0f}% |"
              for name, t, c in stages]
    lines += [
        f"| decode (MP3), instead of FLAC | {res['decode_mp3'] * per_hour:.2f} | | |",
        "",
        "| figure | value | target |", "|---|---:|---:|",
        f"| end to end, FLAC (`analyze`) | {res['end_to_end_flac'] * per_hour:.2f} s per hour "
        f"(CPU {res['cpu_end_to_end_flac'] * per_hour:.1f} s) | {hour} |",
        f"| end to end, MP3 | {res['end_to_end_mp3'] * per_hour:.2f} s per hour | {hour} |",
        f"| end to end, FLAC, non-overlapping windows (`hop_seconds=window`) | "
        f"{res['end_to_end_flac_no_overlap'] * per_hour:.2f} s per hour | {hour} |",
        f"| `emovox predict clip.wav` cold start | {res['cold_start_predict']:.2f} s "
        f"(CPU {res['cold_start_predict_cpu']:.2f} s) | {cold} |",
    ]
    if "peak_rss_mb" in res:
        lines.append(f"| peak memory, `analyze` of {res['memory_hours']:g} h FLAC | {res['peak_rss_mb']:.0f} MB | <= 600 MB |")
    lines += ["", f"Model `{res['model']}`{' int8' if res['int8'] else ''}, {res['threads']} ONNX Runtime threads; "
              f"{res['windows']} windows for {res['speech_seconds'] / 60:.0f} min of speech in {res['hours']:g} h; "
              f"load average at start {res['load_avg']:.1f} on {res['cpu_count']} cores."]
    return "\n".join(lines)


def speed_benchmark(*, model_dir: str | os.PathLike | None = None, hours: float = 1.0,
                    threads: int = 2) -> tuple[dict, str]:
    """What ``emovox benchmark --speed`` runs: the figures and their Markdown section body.

    The caller decides where the section goes (``emovox benchmark`` rewrites the ``speed``
    section of its ``--docs`` file); nothing is written here.
    """
    res = run_speed_benchmark(model_dir=model_dir, hours=hours, threads=threads)
    cmd = "emovox benchmark --speed" if model_dir is None else f"speed_benchmark(model_dir={str(model_dir)!r})"
    return res, f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')})\n\n{format_speed_report(res)}"
