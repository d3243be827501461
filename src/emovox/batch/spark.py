"""The Spark session of emovox jobs, listing audio on a Hadoop filesystem, and shipping emovox
and the model to a cluster's executors.

pyspark is imported only here, inside functions (``pip install 'emovox[spark]'``). The Python
that runs the driver also runs the local workers (``PYSPARK_PYTHON`` defaults to
``sys.executable``). On a cluster the executors need emovox, its dependencies and the model,
in one of three ways:

1. *an installed environment*: the same Python with ``emovox[spark]`` installed on every node
   (``PYSPARK_PYTHON=/opt/emovox/bin/python``); the model must be at the same path everywhere;
2. *shipped code* (``emovox batch --ship``, :func:`ship_to_cluster`): the executors' Python has
   the dependencies (numpy, scipy, soundfile, onnxruntime, pyarrow) but not emovox; the driver
   zips the emovox package (``--py-files``) and the model directory (``spark.archives``,
   unpacked on each executor as ``emovox-model``);
3. *a packed environment*: ``venv-pack -o env.tar.gz`` of a venv with ``emovox[spark]``, then
   ``--conf spark.archives=env.tar.gz#env`` and ``PYSPARK_PYTHON=./env/bin/python``, plus
   ``--ship`` for the model.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

from .._lazy import require
from .inputs import AUDIO_GLOB

__all__ = ["spark_session", "list_audio", "ship_to_cluster", "DEFAULT_MASTER"]

DEFAULT_MASTER = "local[*]"

#: Settings of every emovox session: no UI, Arrow for pandas, one BLAS/OpenMP thread per task
#: (Spark's task slots are the parallelism), quiet logs.
_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    "spark.executorEnv.OMP_NUM_THREADS": "1",
    "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
    "spark.executorEnv.MKL_NUM_THREADS": "1",
    # the batch tables are partitioned by a date column; keep it a string in every reader
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _log4j_file() -> str:
    """A log4j2 configuration that prints errors only (Spark's default prints every warning)."""
    path = Path(tempfile.gettempdir()) / "emovox-log4j2.properties"
    if not path.is_file() or path.read_text() != _LOG4J:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(_LOG4J)
        os.replace(tmp, path)
    return str(path)


def spark_session(master: str | None = None, *, app_name: str = "emovox", shuffle_partitions: int | None = None,
                  conf: dict[str, str] | None = None):
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``).

    Parameters
    ----------
    master : str, optional
        ``local[N]``, ``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``. Ignored when a
        session is already active (tests, notebooks, ``spark-submit``).
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions`` (default: Spark's 200; emovox jobs hardly shuffle).
    conf : dict, optional
        Extra Spark settings.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    require("pyspark", extra="spark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # pyspark warns that it has not been validated with pandas 3; the Arrow paths emovox uses work
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated", module="pyspark")
    builder = SparkSession.builder.appName(app_name).master(master or DEFAULT_MASTER)
    java_opts = f"-Dlog4j2.configurationFile=file:{_log4j_file()}"
    for key, value in {**_CONF, "spark.driver.extraJavaOptions": java_opts, **(conf or {})}.items():
        builder = builder.config(key, value)
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def list_audio(spark, uri: str) -> list[str]:
    """Audio files under ``uri`` (recursively, by extension), as Spark names them.

    Spark's ``binaryFile`` source lists without reading contents when only ``path`` is selected.
    """
    df = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
          .option("pathGlobFilter", AUDIO_GLOB).load(uri).select("path"))
    return sorted(r.path for r in df.collect())


def read_bytes(spark, paths: list[str]):
    """A DataFrame ``file, content`` of the given files (Spark's ``binaryFile`` source)."""
    from pyspark.sql import functions as F

    return spark.read.format("binaryFile").load(paths).select(F.col("path").alias("file"), "content")


def _zip_dir(src: Path, dest: Path, *, prefix: str = "") -> Path:
    import zipfile

    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                zf.write(path, prefix + path.relative_to(src).as_posix())
    return dest


def ship_to_cluster(spark, model_dir: str | os.PathLike | None = None) -> str:
    """Ship the installed emovox package and the model to the executors of ``spark``.

    emovox goes as a zip on the executors' ``sys.path`` (what ``spark-submit --py-files`` does),
    the model directory as an archive unpacked next to each executor (``spark.archives
    model.zip#emovox-model``).

    Returns
    -------
    str
        The ``model_dir`` the executors' jobs must use (:data:`emovox.batch.jobs.SHIPPED_MODEL`).
    """
    import emovox

    from ..models.directory import default_model_dir
    from .jobs import SHIPPED_MODEL

    work = Path(tempfile.mkdtemp(prefix="emovox-ship-"))
    package = Path(emovox.__file__).resolve().parent
    code = _zip_dir(package, work / f"emovox-{emovox.__version__}.zip", prefix="emovox/")
    model = Path(model_dir) if model_dir is not None else default_model_dir()
    archive = _zip_dir(model.resolve(), work / "emovox-model.zip")
    sc = spark.sparkContext
    sc.addPyFile(str(code))
    sc.addArchive(f"{archive}#{SHIPPED_MODEL.split(':', 1)[1]}")
    return SHIPPED_MODEL
