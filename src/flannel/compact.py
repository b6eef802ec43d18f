"""The compact recording: a Zarr v3 hierarchy in one ZIP file (`<run>.zarr.zip`), lossless, about 6x smaller.

Two layers:
- Stored arrays, decoded by zarr's own codecs (zarr + numcodecs, nothing of flannel): every recorded matrix
  is kept as its raw bits (bf16 as uint16, float32 as uint32) with time as the last axis (a [T, rows, D]
  tensor is the array [rows, D, T]; record t is `array[..., t]`), in chunks of whole records, so numcodecs'
  Delta (each element minus the one before it in the chunk: itself one record earlier) sees time innermost;
  then a byte shuffle (high and low bytes apart) and zstd level 3. Embeddings change by a few ulps a step
  and freeze, so their deltas are mostly zero.
- Derived records: where every step is recorded with its grads, the Adam moments are not stored but
  replayed from the previous record (flannel.moments, bit for bit on any CPU); otherwise they are stored
  like the other matrices. The recorder replays each one as it
  records and compares it with the optimizer's bytes; a record that differs, every KEYFRAME_EVERY-th record
  and record 0 are stored. Plain zarr reads a derived record as NaN (the fill value); flannel's Recording
  decodes it. Every stored chunk is decoded back and compared before it is written.
Byte-reproducible: one thread, fixed codec settings, ZIP entries stored (the chunks are compressed already)
with a fixed date, in the order written. The file is written as `<name>.partial` and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import zarr
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.codecs.numcodecs import Delta, Shuffle
from zarr.storage import MemoryStore, ZipStore

from .errors import RecordingError
from .moments import MomentRule
from . import digest
from .background import BackgroundWriter, host_copy

FORMAT = "flannel-compact/1"
SUFFIX = ".zarr.zip"
CHUNK_BYTES = 32 << 20  # decoded bytes per chunk: longer delta runs compress better; a record reads in ~0.1 s
KEYFRAME_EVERY = 32  # a derived moment is at most this many replayed steps from a stored one
ZSTD_LEVEL = 3
SERIES = ("losses", "grad_norms", "recorded_steps")  # the per-record scalars, one array each
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_BITS = {torch.bfloat16: np.uint16, torch.float32: np.uint32}  # matrices are stored as their raw bits
_NAMES = {torch.bfloat16: "bfloat16", torch.float32: "float32", torch.int64: "int64", torch.bool: "bool"}
_DTYPES = {name: dtype for dtype, name in _NAMES.items()}

zarr.config.set({"threading.max_workers": 1, "async.concurrency": 1})
# Delta and Shuffle are numcodecs' codecs, chosen knowingly: zarr-python decodes them wherever numcodecs is
# installed (docs/recording.md says so); the warning would repeat in every job's log.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")


def is_compact(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def records_per_chunk(record_bytes: int) -> int:
    """The largest power of two of records that fits CHUNK_BYTES (1 to 256)."""
    count = 1
    while count < 256 and 2 * count * record_bytes <= CHUNK_BYTES:
        count *= 2
    return count


def moment_source(name: str) -> str | None:
    """The grads a moment key is replayed from (momentum_W <- grads_W), None for other keys."""
    quantity, _, side = name.partition("_")
    return None if quantity not in ("momentum", "variance") else "grads" + (f"_{side}" if side else "")


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as numpy (bf16, which numpy lacks, as its bits)."""
    tensor = tensor.contiguous()
    return tensor.view(torch.uint16).numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()


def _matrix_bits(data: np.ndarray) -> np.ndarray:
    """A recorded matrix as the bits it is stored as (float32 as uint32)."""
    return data.view(np.uint32) if data.dtype == np.float32 else data


def _values(bits: np.ndarray) -> np.ndarray:
    """float32 values of stored bits (bf16 or float32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32) if bits.dtype == np.uint16 else bits.view(np.float32)


def _bits(values: np.ndarray, like: np.dtype) -> np.ndarray:
    return (values.view(np.uint32) >> 16).astype(np.uint16) if like == np.uint16 else values.view(np.uint32)


class CompactWriter:
    """Writes a compact recording record by record (the same calls as flannel.recording.StreamingSafetensors:
    `write` for the static tensors, `write_record` for each record, `finish`, `abort`). `training`: the run's
    training config, which decides the moments' arithmetic; None stores every moment record."""

    def __init__(self, path: str | Path, specs: dict, metadata: dict[str, str], training: dict | None,
                 record_every: int = 1, background: bool = False, resume: bool = False):
        """`resume`: go on with the `.partial` a checkpoint left (`restore` reopens it at the checkpoint)."""
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.specs, self.metadata = specs, dict(metadata)
        self.rule = MomentRule.of(training) if training is not None and record_every == 1 else None
        self.digests = {name: digest.sha256() for name in specs}
        self.store = MemoryStore()
        self.group = zarr.create_group(self.store)
        self.arrays, self.pending, self.stored = {}, {}, {}
        self.previous, self.series = {}, {}
        for name, (dtype, shape) in specs.items():
            self._create(name, dtype, tuple(shape))
        self.handle, self.zip = None, None
        if not resume:
            self._open_zip("wb", end=0, entries=[])
        # Encoding and the replay check run beside training, on the recording thread.
        self.writer = BackgroundWriter(self._encode_record, depth=2) if background else None

    def _open_zip(self, mode: str, end: int, entries: list[zipfile.ZipInfo]) -> None:
        """The ZIP, written from byte `end` on after `entries` (a checkpoint's; none for a new file): the
        central directory, written at finish, lists them with those written after."""
        try:
            self.handle = open(self.partial, mode)
            self.handle.truncate(end)
            self.handle.seek(end)
        except OSError as error:
            raise RecordingError(f"{self.partial}: cannot write the recording ({error.strerror})") from None
        self.zip = zipfile.ZipFile(self.handle, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.zip.filelist = list(entries)
        self.zip.NameToInfo = {entry.filename: entry for entry in entries}

    def _create(self, name: str, dtype: torch.dtype, shape: tuple) -> None:
        attributes = {"dtype": _NAMES[dtype]}
        matrix = dtype in _BITS and len(shape) >= 2
        if not matrix:
            self.arrays[name] = self.group.create_array(name, shape=shape, dtype=np.dtype(_numpy_dtype(dtype)),
                                                        chunks=shape, compressors=[_zstd()],
                                                        attributes=attributes, fill_value=0)
            if shape and name in SERIES:
                self.series[name] = []
            return
        bits = np.dtype(_BITS[dtype])
        attributes["axes"] = "the recorded tensor's axes after the first, then records"
        if self.rule is not None and moment_source(name) in self.specs:
            per_chunk, filters = 1, []  # records stored one by one: most are derived
            self.stored[name] = []
            attributes["derived"] = "Adam moment replay (flannel.moments); stored_records lists the stored ones"
        else:
            per_chunk = records_per_chunk(bits.itemsize * int(np.prod(shape[1:])))
            filters = [Delta(dtype=bits.str)]
        self.arrays[name] = self.group.create_array(
            name, shape=(*shape[1:], shape[0]), chunks=(*shape[1:], per_chunk), dtype=bits, filters=filters,
            serializer=BytesCodec(),
            compressors=[Shuffle(elementsize=bits.itemsize), _zstd()], attributes=attributes,
            fill_value=0x7FC0 if bits == np.uint16 else 0x7FC00000)  # NaN: what a derived record reads as
        self.pending[name] = []

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """A static tensor, whole."""
        data = _as_numpy(tensor.detach().to("cpu", self.specs[name][0]))
        self.digests[name].update(data.tobytes())
        self.arrays[name][...] = data  # into the ZIP at finish, with the others, in name order

    def write_record(self, index: int, values: dict[str, torch.Tensor]) -> None:
        """Record `index` of every time-indexed tensor."""
        copies = {name: host_copy(value, self.specs[name][0]) for name, value in values.items()}
        hosts = {name: host for name, (host, _) in copies.items()}
        if self.writer is None:
            self._encode_record(index, hosts)
        else:
            self.writer.put((index, hosts), [ready for _, ready in copies.values()])

    def _encode_record(self, index: int, values: dict[str, torch.Tensor]) -> None:
        records = {name: _as_numpy(value) for name, value in values.items()}
        clipped = {}  # each side's grad as Adam saw it, computed once for both of its moments
        for name, data in sorted(records.items()):  # the file's order never depends on the caller's
            self.digests[name].update(data.tobytes())
            if name in self.series:
                self.series[name].append(data.item())
            elif name in self.stored:
                self._moment(name, index, _matrix_bits(data), records, clipped)
            else:
                self._append(name, index, _matrix_bits(data))

    def _append(self, name: str, index: int, data: np.ndarray) -> None:
        pending = self.pending[name]
        pending.append(data)
        if len(pending) == self.arrays[name].chunks[-1]:
            self._flush(name, index + 1)

    def _flush(self, name: str, end: int) -> None:
        pending = self.pending[name]
        if pending:
            block, records = np.stack(pending, axis=-1), slice(end - len(pending), end)
            self.arrays[name][..., records] = block
            # Decoded back before it leaves memory: a codec that lost a bit would stop the run here.
            if not np.array_equal(self.arrays[name][..., records], block):
                raise RecordingError(f"{self.partial}: '{name}' records {records.start}-{end - 1} do not decode to "
                                     "the bytes written")
            pending.clear()
            self._move_chunks(name)

    def _clipped(self, grads_name: str, records: dict, clipped: dict) -> np.ndarray | None:
        """The recorded grad of this record, clipped as Adam saw it (None where it is not recorded)."""
        if grads_name not in clipped and grads_name in records:
            grads = _values(_matrix_bits(records[grads_name]))
            clipped[grads_name] = self.rule.clipped(grads, float(records["grad_norms"].item()))
        return clipped.get(grads_name)

    def _moment(self, name: str, index: int, data: np.ndarray, records: dict, clipped: dict) -> None:
        """Store the record unless the replay from the previous one gives its exact bits."""
        derived, previous = None, self.previous.get(name)
        replayable = previous is not None and index % KEYFRAME_EVERY
        g = self._clipped(moment_source(name), records, clipped) if replayable else None
        if g is not None:
            replay = self.rule.momentum if name.startswith("momentum") else self.rule.variance
            derived = _bits(replay(_values(previous), g), data.dtype)
        if derived is None or not np.array_equal(derived, data):
            self.arrays[name][..., index] = data
            self.stored[name].append(index)
            self._move_chunks(name)
        self.previous[name] = data

    def _move_chunks(self, name: str | None = None) -> None:
        """Move the encoded chunks (of array `name`, or all, in key order) from memory into the ZIP."""
        prefix = "" if name is None else f"{name}/"
        for key in sorted(k for k in self.store._store_dict if k.startswith(prefix) and not k.endswith("zarr.json")):
            self._zip_write(key, self.store._store_dict.pop(key).to_bytes())

    def _zip_write(self, key: str, data: bytes) -> None:
        info = zipfile.ZipInfo(key, date_time=_FIXED_DATE)
        info.external_attr = 0o644 << 16
        try:
            self.zip.writestr(info, data, compress_type=zipfile.ZIP_STORED)
        except OSError as error:
            raise RecordingError(f"{self.partial}: cannot write the recording ({error.strerror})") from None

    def checkpoint_state(self) -> dict:
        """What a resumed job needs to go on writing, taken once every record so far is encoded and on disk:
        where the ZIP's entries end and what they are, the records of chunks not yet full, the moments' last
        record and stored list, the scalar series and the digests' running states."""
        if self.writer is not None:
            self.writer.wait()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return {"zip_end": self.handle.tell(), "entries": [_entry_fields(entry) for entry in self.zip.filelist],
                "pending": {name: list(records) for name, records in self.pending.items()},
                "previous": dict(self.previous), "stored": {name: list(i) for name, i in self.stored.items()},
                "series": {name: list(values) for name, values in self.series.items()},
                "digests": {name: d.state() for name, d in self.digests.items()}}

    def restore(self, state: dict) -> None:
        self._open_zip("r+b", state["zip_end"], [_entry(fields) for fields in state["entries"]])
        self.pending = {name: list(records) for name, records in state["pending"].items()}
        self.previous, self.stored, self.series = dict(state["previous"]), state["stored"], state["series"]
        self.digests = {name: digest.Sha256(saved) for name, saved in state["digests"].items()}

    def finish(self, metadata: dict[str, str]) -> None:
        if self.writer is not None:
            self.writer.close()
        for name in sorted(self.pending):
            self._flush(name, self.specs[name][1][0])
        for name, values in self.series.items():
            self.arrays[name][...] = np.asarray(values, dtype=self.arrays[name].dtype)
        self._move_chunks()
        for name, indices in self.stored.items():
            self.arrays[name].attrs["stored_records"] = indices
        self.metadata.update(metadata, format=FORMAT)
        self.metadata["tensor_sha256"] = json.dumps({n: d.hexdigest() for n, d in self.digests.items()},
                                                    sort_keys=True, separators=(",", ":"))
        self.group.attrs["metadata"] = self.metadata
        for key in sorted(self.store._store_dict):
            self._zip_write(key, self.store._store_dict[key].to_bytes())
        self.zip.close()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.partial, self.path)

    def suspend(self) -> None:
        """Stop writing and keep the `.partial` as it is, for a job that resumes from its checkpoint."""
        if self.writer is not None:
            self.writer.close(raise_error=False)
        if self.handle is not None:
            try:  # a central directory past the checkpoint's entries, which a resume cuts off again
                self.zip.close()
            except (OSError, ValueError):
                pass
            self.handle.close()

    def abort(self) -> None:
        self.suspend()
        self.partial.unlink(missing_ok=True)


def _entry_fields(entry: zipfile.ZipInfo) -> dict:
    """A ZIP entry's fields as plain values (the central directory written at finish is made from them)."""
    return {name: getattr(entry, name) for name in zipfile.ZipInfo.__slots__ if hasattr(entry, name)}


def _entry(fields: dict) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(fields["filename"])
    for name, value in fields.items():
        setattr(entry, name, value)
    return entry


def _zstd() -> ZstdCodec:
    return ZstdCodec(level=ZSTD_LEVEL, checksum=False)


def _numpy_dtype(dtype: torch.dtype):
    return {torch.float32: np.float32, torch.int64: np.int64, torch.bool: np.bool_, torch.bfloat16: np.uint16}[dtype]


class CompactSource:
    """Read access to a compact recording: whole arrays, and single records decoded a chunk at a time (the
    last chunk of each array is kept, so a pass in record order decodes each chunk once)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with zipfile.ZipFile(path) as archive:
                archive.getinfo("zarr.json")
            self.group = zarr.open_group(ZipStore(path, mode="r"), mode="r")
            self.metadata = dict(self.group.attrs["metadata"])
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise RecordingError(f"{path}: truncated or not a compact recording ({_short(error)})") from None
        self.arrays = {name: array for name, array in self.group.arrays()}
        self.keys = set(self.arrays)
        self.rule = MomentRule.of(json.loads(self.metadata["config"])["training"])
        self.chunks, self.cursors = {}, {}
        self._steps = None

    def dtype(self, name: str) -> torch.dtype:
        return _DTYPES[self.arrays[name].attrs["dtype"]]

    def shape(self, name: str) -> list[int]:
        """The recorded tensor's shape ([T, ...] for a matrix, whose array keeps T last)."""
        shape = list(self.arrays[name].shape)
        return shape[-1:] + shape[:-1] if "axes" in self.arrays[name].attrs else shape

    def tensor(self, name: str) -> torch.Tensor:
        if "axes" in self.arrays[name].attrs:
            return torch.stack([self.record(name, index) for index in range(self.shape(name)[0])])
        return self._torch(self._read(name, ...), name)

    def replayed_records(self, name: str) -> frozenset[int]:
        if "derived" not in self.arrays[name].attrs:
            return frozenset()
        return frozenset(range(self.shape(name)[0])) - frozenset(self.arrays[name].attrs["stored_records"])

    def record(self, name: str, index: int) -> torch.Tensor:
        if not 0 <= index < self.shape(name)[0]:
            raise IndexError(f"{self.path}: record {index} of '{name}' (it has {self.shape(name)[0]})")
        if "derived" in self.arrays[name].attrs:
            return self._torch(self._moment(name, index), name)
        per_chunk = self.arrays[name].chunks[-1]
        chunk = index // per_chunk
        if self.chunks.get(name, (None,))[0] != chunk:
            # Records first, once per chunk, so each record is one contiguous slice.
            records = self._read(name, slice(chunk * per_chunk, (chunk + 1) * per_chunk))
            self.chunks[name] = (chunk, np.ascontiguousarray(np.moveaxis(records, -1, 0)))
        return self._torch(self.chunks[name][1][index - chunk * per_chunk], name)

    def _moment(self, name: str, index: int) -> np.ndarray:
        stored = self.arrays[name].attrs["stored_records"]
        base = max(i for i in stored if i <= index)
        at, bits = self.cursors.get(name, (-1, None))
        if not base <= at <= index:
            at, bits = base, self._read(name, base)
        replay = self.rule.momentum if name.startswith("momentum") else self.rule.variance
        norms = self._norms()
        while at < index:
            at += 1
            grads = _matrix_bits(_as_numpy(self.record(moment_source(name), at)))
            bits = _bits(replay(_values(bits), self.rule.clipped(_values(grads), norms[at])), bits.dtype)
        self.cursors[name] = (at, bits)
        return bits

    def _norms(self) -> list[float]:
        if self._steps is None:
            self._steps = self._read("grad_norms", ...).tolist()
        return self._steps

    def _read(self, name: str, selection) -> np.ndarray:
        """Records `selection` (an index, a slice, or ... for a whole array) as zarr decodes them."""
        try:
            array = self.arrays[name]
            return np.asarray(array[selection] if selection is Ellipsis else array[..., selection])
        except Exception as error:  # a codec's or the ZIP's complaint about damaged bytes
            where = "" if selection is Ellipsis else f" at record {_first(selection)}"
            raise RecordingError(f"{self.path}: tensor '{name}'{where} cannot be decoded ({_short(error)})") from None

    def _torch(self, data: np.ndarray, name: str) -> torch.Tensor:
        dtype = self.dtype(name)
        tensor = torch.from_numpy(np.array(data, order="C"))
        if dtype == torch.bfloat16:
            return tensor.view(torch.bfloat16)
        return tensor.view(torch.float32) if dtype == torch.float32 and tensor.dtype == torch.uint32 else tensor


def _first(selection) -> int:
    return selection.start if isinstance(selection, slice) else int(selection)


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__


def decoded_digests(source: CompactSource) -> dict[str, str]:
    """SHA-256 of each tensor's decoded bytes (what a safetensors recording would hold), record by record; for
    a tensor that cannot be decoded, the reason, naming the record where decoding stopped."""
    digests = {}
    for name in sorted(source.keys):
        digest = hashlib.sha256()
        try:
            if len(source.shape(name)) >= 2:
                for index in range(source.shape(name)[0]):
                    digest.update(_as_numpy(source.record(name, index)).tobytes())
            else:
                digest.update(_as_numpy(source.tensor(name)).tobytes())
            digests[name] = digest.hexdigest()
        except RecordingError as error:
            digests[name] = str(error).split(": ", 1)[-1]
    return digests
