"""Python imports this module at start-up in every process the workflow starts (rules/common.smk puts this
folder on their PYTHONPATH). In a job's script process it makes Ctrl-C one line until the script's own
handling takes over (flannel.logs.script_logging): before that, Snakemake's preamble is still importing
Snakemake, and Python's traceback would quote the preamble's one line, which holds the whole serialised job
(hundreds of terminal lines). Nothing exists yet that needs cleaning up, so the job just ends."""

import importlib.machinery
import importlib.util
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _interrupted(signum, frame):
    os.write(2, b"interrupted\n")
    os._exit(128 + signum)


def _chain():
    """Run the sitecustomize this one shadows, if the environment has one."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != HERE])
    if spec is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


_script = sys.argv[0] if sys.argv else ""
# Only a Snakemake script job, and only where Ctrl-C would raise (not where the process was told to ignore it).
if f"{os.sep}.snakemake{os.sep}scripts{os.sep}" in _script and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)
_chain()
