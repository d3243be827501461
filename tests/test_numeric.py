"""One source each: seconds -> frames, softmax, file hashes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from emovox._numeric import sha256_file, softmax
from emovox.features.logmel import logmel
from emovox.features.windows import seconds_to_frames


@pytest.mark.parametrize("seconds", [2.999, 3.0, 1.5, 0.5, 4.2])
def test_seconds_to_frames_is_what_logmel_gives(seconds):
    n = int(round(seconds * 16000))
    assert logmel(np.zeros(n, np.float32)).shape[-1] == seconds_to_frames(seconds)


def test_training_and_export_use_the_one_formula():
    pytest.importorskip("sklearn")
    from emovox.models.neural import NeuralClassifier

    assert NeuralClassifier()._frames(2.999) == seconds_to_frames(2.999) == 300


def test_softmax_and_sha256(tmp_path):
    z = np.array([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]])
    p = softmax(z)
    assert np.allclose(p.sum(axis=-1), 1) and np.allclose(p[0, :2], 0.5)
    f = tmp_path / "f.bin"
    f.write_bytes(b"emovox" * 1000)
    assert sha256_file(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    from emovox.models import onnx_export

    assert onnx_export.sha256 is sha256_file
