"""Logging for the workflow's scripts: everything to the rule's log file, and the expected errors
(bad config, bad data, bad recordings, failed training) as one line instead of a traceback."""

from __future__ import annotations

import contextlib
import logging
import sys

from .config import ConfigError
from .data import DataError
from .recording import RecordingError
from .training import TrainingError

EXPECTED_ERRORS = (ConfigError, DataError, RecordingError, TrainingError, OSError)


@contextlib.contextmanager
def script_logging(log_path: str | None):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        yield logging.getLogger("flannel")
    except EXPECTED_ERRORS as error:
        logging.getLogger("flannel").error("%s", " ".join(str(error).split()))
        raise SystemExit(1) from None
