"""Logging for the workflow's scripts: everything to the rule's log file, and the expected errors
(flannel's own, and OS errors such as a full disk) as one line instead of a traceback.
Imports nothing heavy, so a script starts without loading torch or transformers it does not need."""

from __future__ import annotations

import contextlib
import logging
import sys

from .errors import FlannelError


@contextlib.contextmanager
def script_logging(log_path: str | None):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        yield logging.getLogger("flannel")
    except (FlannelError, OSError) as error:
        logging.getLogger("flannel").error("%s", " ".join(str(error).split()))
        raise SystemExit(1) from None
