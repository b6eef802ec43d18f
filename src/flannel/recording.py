"""The recording format: a safetensors file written while training runs, and lazy, checked reads of it.

The shapes of every recorded tensor are known before step 1, so the header is written first and each record
is placed at its offset with pwrite; nothing accumulates in RAM. The writes run on a thread of their own, so
the next training step computes while a record goes to disk (on a GPU the copy off the device is
asynchronous too, into pinned memory); at most two records' worth of writes wait, and the bytes are those of
writing in line. The file lives under `<name>.partial` with
`complete: false` in its metadata until the last record is in, then the header is rewritten in place (same
reserved length) with the final state digest and `complete: true`, and the file is renamed onto its path.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import torch
from safetensors import safe_open

from . import digest
from .background import BackgroundWriter, host_copy
from .compact import SERIES, CompactSource, CompactWriter, decoded_digests, is_compact
from .config import TRAINING_SECTIONS, run_config
from .errors import RecordingError

FORMAT = "flannel-recording/1"
MATRICES = ("embeddings", "grads", "momentum", "variance")
_SAFETENSORS_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}
_HEADER_SLACK = 256  # room for the final metadata values, which may be longer than their placeholders
REMAP_BYTES = 64 << 20


def matrix_keys(tied: bool, quantities) -> list[str]:
    """The notebooks' key names: tied `embeddings`..., untied `embeddings_E`, `embeddings_W`..."""
    names = [q for q in MATRICES if q in quantities]
    return names if tied else [f"{q}_{side}" for q in names for side in ("E", "W")]


class StreamingSafetensors:
    """Write a safetensors file whose tensors are filled in piece by piece, at known offsets. Each tensor is
    written front to back, so its SHA-256 is taken on the way and stored in the header (`tensor_sha256`),
    where a reader can check the bytes (`tensor_digests`)."""

    def __init__(self, path: str | Path, specs: dict[str, tuple[torch.dtype, tuple[int, ...]]], metadata: dict[str, str],
                 background: bool = False, resume: bool = False):
        """`resume`: open the `.partial` a checkpoint left, keeping its bytes (`restore` then sets the state)."""
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # safetensors' own order: wider dtypes first, then by name, so every tensor stays aligned.
        order = sorted(specs, key=lambda name: (-_itemsize(specs[name][0]), name))
        self.entries, offset = {}, 0
        for name in order:
            dtype, shape = specs[name]
            size = _itemsize(dtype) * _numel(shape)
            self.entries[name] = {"dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        self.specs, self.data_size = specs, offset
        self.digests = {name: digest.sha256() for name in specs}
        self.written = {name: self.entries[name]["data_offsets"][0] for name in specs}  # next offset of each tensor
        # Placeholders as long as the final digests, so the header keeps its reserved length.
        self.metadata = {**metadata, "tensor_sha256": _digest_json(dict.fromkeys(specs, "0" * 64))}
        self.header_size = _round8(len(self._header_json()) + _HEADER_SLACK)
        self.data_start = 8 + self.header_size
        self.fd, self.writer = None, None
        try:
            self.fd = os.open(self.partial, os.O_RDWR if resume else os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            self._write_header()
            # Reserve every byte now, so a disk too small fails here, before any training, not hours in.
            os.posix_fallocate(self.fd, 0, self.data_start + self.data_size)
        except (OSError, OverflowError) as error:
            self.abort()
            reason = getattr(error, "strerror", None) or str(error)
            raise RecordingError(f"{self.partial}: cannot reserve {self.data_start + self.data_size} bytes ({reason})") from None
        self.writer = BackgroundWriter(self._store, depth=2 * len(specs)) if background else None

    def _header_json(self) -> bytes:
        return json.dumps({"__metadata__": self.metadata, **self.entries}, separators=(",", ":"), sort_keys=False).encode()

    def _write_header(self) -> None:
        header = self._header_json()
        if len(header) > self.header_size:
            raise RecordingError(f"{self.partial}: final metadata outgrew the reserved header")
        self._pwrite(struct.pack("<Q", self.header_size) + header.ljust(self.header_size, b" "), 0)

    def _pwrite(self, data, offset: int) -> None:
        try:
            _pwrite_all(self.fd, data, offset)
        except OSError as error:
            raise RecordingError(f"{self.partial}: cannot write the recording ({error.strerror})") from None

    def write(self, name: str, tensor: torch.Tensor, index: int | None = None) -> None:
        """Write a whole tensor, or slice `index` of its first dimension."""
        dtype, shape = self.specs[name]
        expected = tuple(shape if index is None else shape[1:])
        if tuple(tensor.shape) != expected:
            raise RecordingError(f"{self.partial}: {name} got shape {tuple(tensor.shape)}, expected {expected}")
        begin = self.entries[name]["data_offsets"][0]
        if index is not None:
            begin += index * tensor.numel() * _itemsize(dtype)
        if self.writer is None:
            self._store(name, tensor.detach().to("cpu", dtype).contiguous(), begin)
        else:
            host, ready = host_copy(tensor, dtype)
            self.writer.put((name, host, begin), [ready])

    def write_record(self, index: int, values: dict[str, torch.Tensor]) -> None:
        """Record `index` of each [T, ...] tensor in `values`."""
        for name, tensor in values.items():
            self.write(name, tensor, index)

    def _store(self, name: str, host: torch.Tensor, begin: int) -> None:
        """Write `host` at data offset `begin` of tensor `name`, which must be where that tensor goes on."""
        if begin != self.written[name]:
            raise RecordingError(f"{self.partial}: {name} written out of order (at {begin}, next is {self.written[name]})")
        data = _bytes(host)
        self.digests[name].update(data)
        self._pwrite(data, self.data_start + begin)
        self.written[name] += len(data)

    def checkpoint_state(self) -> dict:
        """What a resumed job needs to go on writing, taken once every write so far is on disk."""
        if self.writer is not None:
            self.writer.wait()
        os.fsync(self.fd)
        return {"written": dict(self.written), "digests": {name: d.state() for name, d in self.digests.items()}}

    def restore(self, state: dict) -> None:
        """A checkpoint's state, set once the static tensors (written again, alike) are in."""
        if self.writer is not None:
            self.writer.wait()
        self.written = dict(state["written"])
        self.digests = {name: digest.Sha256(saved) for name, saved in state["digests"].items()}

    def suspend(self) -> None:
        """Stop writing and keep the `.partial`, for a job that resumes from its checkpoint."""
        if self.writer is not None:
            self.writer.close(raise_error=False)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def finish(self, metadata: dict[str, str]) -> None:
        """Wait for the pending writes, rewrite the header with the final metadata, flush, and rename onto the
        final path."""
        if self.writer is not None:
            self.writer.close()
        self.metadata.update(metadata)
        self.metadata["tensor_sha256"] = _digest_json({name: digest.hexdigest() for name, digest in self.digests.items()})
        self._write_header()
        try:
            os.fsync(self.fd)
        except OSError as error:
            raise RecordingError(f"{self.partial}: cannot flush the recording ({error.strerror})") from None
        os.close(self.fd)
        self.fd = None
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        self.suspend()
        self.partial.unlink(missing_ok=True)


def _digest_json(digests: dict[str, str]) -> str:
    return json.dumps(digests, sort_keys=True, separators=(",", ":"))


def tensor_digests(path: str | Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """One sequential read of a recording: the SHA-256 of the whole file, of each tensor's (decoded) bytes, and
    the per-tensor digests its header names (empty for a file that names none, such as the notebooks')."""
    if is_compact(path):
        return _compact_digests(Path(path))
    with open(path, "rb") as handle:
        head = handle.read(8)
        (header_size,) = struct.unpack("<Q", head)
        header_bytes = handle.read(header_size)
        header = json.loads(header_bytes)
        whole = hashlib.sha256(head + header_bytes)
        tensors = sorted(((entry["data_offsets"], name) for name, entry in header.items() if name != "__metadata__"))
        found, position = {}, 0
        for (begin, end), name in tensors:
            digest = hashlib.sha256()
            gap = handle.read(begin - position)  # none in a well-formed file
            whole.update(gap)
            for block in iter(lambda: handle.read(min(1 << 20, end - handle.tell() + 8 + header_size)), b""):
                whole.update(block)
                digest.update(block)
            found[name], position = digest.hexdigest(), end
        whole.update(handle.read())
    named = json.loads(header.get("__metadata__", {}).get("tensor_sha256", "{}"))
    return whole.hexdigest(), found, named


def _compact_digests(path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    whole = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            whole.update(block)
    source = CompactSource(path)
    return whole.hexdigest(), decoded_digests(source), json.loads(source.metadata.get("tensor_sha256", "{}"))


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _bytes(tensor: torch.Tensor) -> memoryview:
    """A view of the tensor's bytes (no copy); bf16 has no numpy dtype, so go through uint8."""
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy())


def _round8(n: int) -> int:
    return (n + 7) // 8 * 8


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class SafetensorsSource:
    """Read access to a finished safetensors recording (safe_open slices; nothing loads whole)."""

    def __init__(self, path: Path):
        self.path = path
        header_size, header = _header(path)
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        expected_size = 8 + header_size + max(ends, default=0)
        actual_size = path.stat().st_size
        if actual_size != expected_size:
            raise RecordingError(f"{path}: truncated or padded recording ({actual_size} bytes, header declares {expected_size})")
        try:
            self._file = safe_open(str(path), framework="pt")
        except Exception as error:
            raise RecordingError(f"{path}: not a readable safetensors file ({' '.join(str(error).split())[:120]})") from None
        self._read_since_map = 0
        self.metadata = header.get("__metadata__", {})  # in the file's order (safe_open's is a hash map's)
        self.keys = set(self._file.keys())
        if self.metadata.get("format") == FORMAT and self.metadata.get("complete") != "true":
            raise RecordingError(f"{path}: incomplete recording (training did not finish)")

    def tensor(self, name: str) -> torch.Tensor:
        return self._file.get_tensor(name)

    def record(self, name: str, index: int) -> torch.Tensor:
        """safetensors serves slices from a memory map, and every page read stays in the RSS while the map
        lives (two 2.4 GB files compared ended at 5 GB), so the map is renewed after every REMAP_BYTES read;
        the "pread" backend avoids the map but rereads the whole tensor per slice (50x slower)."""
        tensor = self._file.get_slice(name)[index]
        self._read_since_map += tensor.numel() * tensor.element_size()
        if self._read_since_map >= REMAP_BYTES:
            self._file, self._read_since_map = safe_open(str(self.path), framework="pt"), 0
        return tensor

    def shape(self, name: str) -> list[int]:
        return self._file.get_slice(name).get_shape()

    def replayed_records(self, name: str) -> frozenset[int]:
        return frozenset()  # every record is stored


class Recording:
    """Lazy, checked read access to a finished recording, safetensors or compact (flannel.compact): the same
    tensors, bytes and metadata from either."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: recording not found")
        self._source = CompactSource(self.path) if is_compact(self.path) else SafetensorsSource(self.path)
        self.metadata, self.keys = self._source.metadata, self._source.keys

    @property
    def tied(self) -> bool:
        return bool(self.scalar("tied_weights"))

    @property
    def config(self) -> dict:
        return json.loads(self.metadata.get("config", "{}"))

    @property
    def n_records(self) -> int:
        return self.shape("recorded_steps")[0]

    def steps(self) -> list[int]:
        return self.tensor("recorded_steps").tolist()

    def tensor(self, name: str) -> torch.Tensor:
        self._require(name)
        return self._source.tensor(name)

    def scalar(self, name: str):
        return self.tensor(name).item()

    def record(self, name: str, index: int) -> torch.Tensor:
        """Record `index` of a [T, ...] tensor, read alone."""
        self._require(name)
        return self._source.record(name, index)

    def shape(self, name: str) -> list[int]:
        self._require(name)
        return self._source.shape(name)

    def replayed_records(self, name: str) -> frozenset[int]:
        """The records of `name` a compact recording derives rather than stores: Adam moments replayed from
        the previous record and the grads (flannel.compact), each checked against the optimizer's own bytes
        when it was recorded (it is stored where they differ). Empty for a safetensors recording."""
        self._require(name)
        return self._source.replayed_records(name)

    def matrix(self, quantity: str, side: str = "W") -> str:
        """The key of a recorded matrix: tied files hold one (E is W), untied ones an _E and a _W."""
        return quantity if self.tied else f"{quantity}_{side}"

    def _require(self, name: str) -> None:
        if name not in self.keys:
            kind = "tied" if "embeddings" in self.keys else "untied" if "embeddings_E" in self.keys else "unknown"
            raise RecordingError(f"{self.path}: no tensor '{name}' in this {kind} recording")

    def expect(self, *, tied: bool | None = None, config: dict | None = None, sections=TRAINING_SECTIONS) -> "Recording":
        """Refuse a recording of the wrong tying, or one made under another config than `config`."""
        if tied is not None and self.tied != tied:
            raise RecordingError(f"{self.path}: {_article(self.tied)} recording where {_article(tied)} one is expected")
        if config is not None:
            # Both sides as far as they reach the bytes: a logging knob in either does not count.
            recorded, config = run_config(self.config), run_config(config)
            for section in sections:
                if recorded.get(section) != config.get(section):
                    changed = sorted(k for k in set(recorded.get(section, {})) | set(config.get(section, {}))
                                     if recorded.get(section, {}).get(k) != config.get(section, {}).get(k))
                    raise RecordingError(
                        f"{self.path}: recorded under another config (differs in {', '.join(f'{section}.{k}' for k in changed)}); rerun its training"
                    )
        return self


def _article(tied: bool) -> str:
    return "a tied" if tied else "an untied"


def _header_length(path: Path) -> int:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8:
        raise RecordingError(f"{path}: truncated recording (no safetensors header)")
    (header_size,) = struct.unpack("<Q", head)
    if header_size > 100_000_000:
        raise RecordingError(f"{path}: corrupted recording (header length {header_size})")
    return header_size


def _header(path: Path) -> tuple[int, dict]:
    """A safetensors file's header length and header JSON, in its order."""
    header_size = _header_length(path)
    with open(path, "rb") as handle:
        handle.seek(8)
        try:
            return header_size, json.loads(handle.read(header_size))
        except (ValueError, UnicodeDecodeError):
            raise RecordingError(f"{path}: corrupted recording (header is not JSON)") from None


def convert_recording(source: str | Path, out: str | Path) -> None:
    """Write a recording in the format `out`'s suffix names (.zarr.zip: compact; else safetensors), streamed
    record by record: the file the recorder writes in that format for the same run, byte for byte."""
    recording = Recording(source)
    metadata = dict(recording.metadata)
    final = {"complete": "true", "state_sha256_final": metadata["state_sha256_final"]}
    # The header as the recorder first wrote it (placeholders decide a safetensors header's reserved length).
    metadata.update(format=FORMAT, complete="false", state_sha256_final="0" * 64)
    metadata.pop("tensor_sha256", None)
    time_indexed = {name for name in recording.keys if name in SERIES or len(recording.shape(name)) >= 2}
    specs = {name: ((recording.record(name, 0) if name in time_indexed else recording.tensor(name)).dtype,
                    tuple(recording.shape(name))) for name in recording.keys}
    if is_compact(out):
        writer = CompactWriter(out, specs, metadata, recording.config["training"],
                               recording.config["recording"]["record_every"])
    else:
        writer = StreamingSafetensors(out, specs, metadata)
    try:
        for name in sorted(recording.keys - time_indexed):
            writer.write(name, recording.tensor(name))
        for index in range(recording.n_records):
            writer.write_record(index, {name: recording.record(name, index) for name in sorted(time_indexed)})
        writer.finish(final)
    except BaseException:
        writer.abort()
        raise
