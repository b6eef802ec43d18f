"""Outputs: never a half-written file at the final path, no machine paths, tables as TSV (written, and read
back with their columns checked)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AnalysisError

if TYPE_CHECKING:
    import pandas as pd


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        # Some writers (safetensors) create their file 0600; every output gets the mode of a new file.
        os.chmod(partial, 0o666 & ~_umask())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as partial:
        partial.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_tsv(path: str | Path, rows: list[dict]) -> None:
    """Rows of plain values as a TSV with a header line (floats to 6 significant digits)."""
    columns = list(rows[0])
    lines = ["\t".join(columns)] + ["\t".join(_tsv_cell(row[c]) for c in columns) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _tsv_cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_table(table, path: str | Path) -> None:
    """A pandas table as TSV, floats to 9 significant digits (exact for float32), NaN spelled out."""
    with atomic_output(path) as partial:
        table.to_csv(partial, sep="\t", index=False, float_format="%.9g", na_rep="NaN")


def read_table(path: str | Path, required=("step",)) -> pd.DataFrame:
    """An analysis table, refused with a one-line error naming the file if it lacks `required` columns."""
    import pandas as pd  # only the jobs that read tables load pandas; every job writes through this module

    try:
        table = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as error:
        raise AnalysisError(f"{path}: unreadable analysis table ({' '.join(str(error).split())[:120]})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AnalysisError(f"{path}: analysis table lacks column(s) {', '.join(missing)}; rerun its analysis")
    return table


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display(path, root=".") -> str:
    """A path as it may appear in an output: relative to the workflow root, never a machine path."""
    path, root = Path(path), Path(root).resolve()
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name
