"""Logging for the workflow's scripts: everything to the rule's log file and to stderr. The expected errors
(flannel's own, and OS errors such as a full disk) and an interrupt become one line; any other error is
logged with its traceback, so it reaches the rule's log too. Imports nothing heavy, so a script starts
without loading torch or transformers it does not need."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys

from .errors import FlannelError


@contextlib.contextmanager
def script_logging(log_path: str | None):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    log = logging.getLogger("flannel")
    # From here Ctrl-C raises KeyboardInterrupt, so the job's cleanup runs (no .partial file is left) and it
    # ends with one line; workflow/startup/sitecustomize.py ended the process at once until now.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield log
    except (FlannelError, OSError) as error:
        log.error("%s", " ".join(str(error).split()))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        log.error("interrupted")
        raise SystemExit(130) from None
    except Exception:
        log.exception("unexpected error")
        raise SystemExit(1) from None
