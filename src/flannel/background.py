"""A recording's writes, off the training thread: host copies of the recorded tensors (asynchronous from a
GPU) handed to one writer thread, with bounded memory."""

from __future__ import annotations

import queue
import threading

import torch


class BackgroundWriter:
    """Calls `write(*arguments)` on a thread, in the order put, once the (GPU) copies they hold are ready. `put`
    blocks while `depth` calls wait, so memory stays bounded; an error on the thread is raised by the next
    `put` or by `close`."""

    def __init__(self, write, depth: int):
        self.write, self.error = write, None
        self.pending = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.pending.get()) is not None:
            arguments, events = item
            if self.error is None:
                try:
                    for ready in events:
                        if ready is not None:
                            ready.synchronize()
                    self.write(*arguments)
                except BaseException as error:  # handed to the training thread, which raises it
                    self.error = error
            self.pending.task_done()

    def put(self, arguments: tuple, events: list) -> None:
        self._raise()
        self.pending.put((arguments, events))

    def wait(self) -> None:
        """Block until every call put so far has run (a checkpoint saves the state they leave)."""
        self.pending.join()
        self._raise()

    def close(self, raise_error: bool = True) -> None:
        if self.thread.is_alive():
            self.pending.put(None)
            self.thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def host_copy(tensor: torch.Tensor, dtype: torch.dtype):
    """A host copy of `tensor` in `dtype` that later steps cannot change, and (on a GPU) the event that
    marks it complete: the copy runs asynchronously into pinned memory."""
    tensor = tensor.detach()
    if tensor.device.type == "cuda":
        source = tensor.to(dtype).contiguous()
        host = torch.empty(source.shape, dtype=dtype, pin_memory=True)
        host.copy_(source, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
        return host, ready
    return tensor.to("cpu", dtype, copy=True).contiguous(), None
