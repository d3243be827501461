"""The Spark session of emovox jobs, and listing audio on a Hadoop filesystem.

pyspark is imported only here, inside functions (``pip install 'emovox[spark]'``). The Python
that runs the driver also runs the local workers (``PYSPARK_PYTHON`` defaults to
``sys.executable``); on a cluster, set ``PYSPARK_PYTHON`` to the executors' Python that has
emovox installed (or ship it with ``--py-files``/a packed environment).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

from .._lazy import require
from .inputs import AUDIO_GLOB

__all__ = ["spark_session", "list_audio", "DEFAULT_MASTER"]

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
