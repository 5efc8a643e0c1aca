"""The batched encoding engine every image encoder plugin runs its pages through.

A plugin supplies two functions: ``prepare`` (items -> CPU tensors, e.g. resize and
normalize pages) and ``forward`` (device tensors -> one result per item). The engine owns
what is the same for every model: device and dtype, size-sorted batching, preparing the
next batch in a background thread while the model runs the current one, halving the batch
on CUDA out-of-memory, bounding CPU batches by bytes, progress, and putting the results
back in the caller's order.

torch is imported lazily (inside functions), so importing this module stays cheap.
"""

from __future__ import annotations

__all__ = [
    "cuda_may_be_present",
    "ENGINE_OPTIONS",
    "EncodingEngine",
    "PreparedBatch",
    "resolve_device",
    "resolve_dtype",
    "resolve_flag",
    "DEFAULT_CPU_BATCH_BYTES",
]

import contextlib
import glob
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import MissingDependencyError, RetrieverError, UsageError
from .options import Option

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")

#: the options every encoder that runs on this engine declares (``EncoderSpec.options``)
ENGINE_OPTIONS: tuple[Option, ...] = (
    Option("device", str, "auto", "auto, cpu, cuda or cuda:N", stage="open"),
    Option("dtype", str, "auto", "auto, float32, bfloat16 or float16", stage="open"),
    Option("batch_size", int, None, "pages per model batch (default: adaptive)", minimum=1,
           stage="open"),
)

#: On the CPU one batch's prepared tensors stay under this many bytes (about 1 GiB):
#: beyond that a bigger batch buys no speed, only memory pressure.
DEFAULT_CPU_BATCH_BYTES = 1 << 30

_DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "image encoders need torch", hint="pip install 'vision-retriever[clip]'") from exc
    return torch


def cuda_may_be_present() -> bool:
    """False only where no CUDA device can be there, decided without importing torch.

    Importing torch costs seconds of CPU; an encoder that runs on onnxruntime on a CPU asks
    only this. On Linux the NVIDIA driver makes ``/dev/nvidia*`` or ``/proc/driver/nvidia``;
    ``CUDA_VISIBLE_DEVICES`` empty or ``-1`` hides every device. Elsewhere: assume it may.
    """
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia[0-9]*"))
    return True


def resolve_device(spec: str | None = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``."""
    torch = _torch()
    text = (spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {spec!r}", hint="use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {spec!r} asked for, but CUDA is not available here",
                         hint="use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {spec!r} does not exist ({torch.cuda.device_count()} GPUs)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {spec!r} asked for, but MPS is not available here")
    return device


def resolve_dtype(spec: str | None, device: torch.device) -> torch.dtype:
    """``"auto"`` -> bfloat16 on CUDA (float16 where bf16 is unsupported), float32 elsewhere."""
    torch = _torch()
    text = (spec or "auto").strip().lower().removeprefix("torch.")
    if text == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    name = _DTYPE_NAMES.get(text)
    if name is None:
        raise UsageError(f"unknown dtype {spec!r}", hint="use auto, float32, bfloat16 or float16")
    return getattr(torch, name)


def resolve_flag(value: object, name: str) -> bool:
    """A boolean encoder option; the CLI hands options over as strings ("true", "0")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"option {name}={value!r} is not a boolean", hint="use true or false")


@dataclass
class PreparedBatch:
    """What ``prepare`` returns for one batch.

    ``tensors`` are CPU tensors: the engine pins them (CUDA), moves them to its device
    without blocking and casts floating ones to its dtype. ``meta`` has one entry per item
    (e.g. the geometry needed to give each vector its box).
    """

    tensors: dict[str, Any]
    meta: list[Any] = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(int(t.element_size() * t.nelement()) for t in self.tensors.values()
                   if hasattr(t, "element_size"))


@dataclass
class _Slot:
    """One planned batch: positions in the sorted order, and its prepare job."""

    start: int
    stop: int
    future: Future


class _Restart(Exception):
    """Internal: re-plan from ``start`` with a smaller batch size."""

    def __init__(self, start: int, batch_size: int) -> None:
        super().__init__(start, batch_size)
        self.start = start
        self.batch_size = batch_size


class EncodingEngine:
    """Runs ``prepare`` / ``forward`` over items in batches; see the module docstring.

    ``max_batch_bytes`` bounds one CPU batch's prepared tensors (default about 1 GiB).
    """

    def __init__(
        self,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        prefetch: int = 2,
        progress: Callable[[int, int], None] | None = None,
        *,
        max_batch_bytes: int = DEFAULT_CPU_BATCH_BYTES,
    ) -> None:
        if batch_size is not None and int(batch_size) < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.prefetch = max(1, int(prefetch))
        self.progress = progress
        self.max_batch_bytes = int(max_batch_bytes)

    def batch_for(self, default: int) -> int:
        """Items per batch: the asked ``batch_size``, else ``default`` (x4 on a GPU).

        A GPU stays busy only with bigger batches; out-of-memory backoff halves it when
        that is too much. On the CPU the byte bound still applies on top.
        """
        if self.batch_size is not None:
            return self.batch_size
        return max(1, int(default)) * (4 if self.device.type == "cuda" else 1)

    def __repr__(self) -> str:
        return (f"EncodingEngine(device={self.device}, dtype={self.dtype}, "
                f"batch_size={self.batch_size})")

    # -- moving tensors ---------------------------------------------------------------

    def _pin(self, batch: PreparedBatch) -> PreparedBatch:
        """Page-locked host memory makes the copy to the GPU asynchronous (background)."""
        if self.device.type != "cuda":
            return batch
        batch.tensors = {k: v.pin_memory() if hasattr(v, "pin_memory") else v
                         for k, v in batch.tensors.items()}
        return batch

    def to_device(self, batch: PreparedBatch) -> PreparedBatch:
        """The batch's tensors on the engine's device, floating ones in its dtype."""
        moved: dict[str, Any] = {}
        for key, value in batch.tensors.items():
            if hasattr(value, "to") and hasattr(value, "is_floating_point"):
                value = value.to(self.device, non_blocking=True)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            moved[key] = value
        return PreparedBatch(moved, batch.meta)

    def _autocast(self) -> contextlib.AbstractContextManager:
        torch = _torch()
        if self.device.type == "cuda" and self.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast(device_type="cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    # -- the loop ---------------------------------------------------------------------

    def run(
        self,
        items: Sequence[T],
        prepare: Callable[[list[T]], PreparedBatch],
        forward: Callable[[PreparedBatch], list[R]],
        *,
        size_of: Callable[[T], float] | None = None,
        default_batch_size: int = 8,
    ) -> list[R]:
        """One result per item, in the order of ``items``."""
        n = len(items)
        if n == 0:
            return []
        # Largest first: similar sizes share a batch (less padding), and an out-of-memory
        # error shows up on the first batch rather than after an hour.
        order = list(range(n))
        if size_of is not None:
            order.sort(key=lambda i: size_of(items[i]), reverse=True)
        results: list[Any] = [None] * n
        batch_size = self.batch_for(default_batch_size)
        start = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as pool:
            while start < n:
                try:
                    self._run_from(items, order, start, batch_size, prepare, forward, pool,
                                   results)
                    start = n
                except _Restart as restart:
                    start, batch_size = restart.start, restart.batch_size
        return results

    def _run_from(self, items: Sequence[T], order: list[int], start: int, batch_size: int,
                  prepare: Callable[[list[T]], PreparedBatch],
                  forward: Callable[[PreparedBatch], list[R]], pool: ThreadPoolExecutor,
                  results: list[Any]) -> None:
        """Process ``order[start:]`` at ``batch_size``; raises _Restart to re-plan.

        Batches finish in sorted order, so ``order[:start]`` is already done.
        """
        torch = _torch()
        n = len(order)
        planned: deque[_Slot] = deque()
        cursor = start

        def submit() -> None:
            nonlocal cursor
            if cursor >= n:
                return
            stop = min(n, cursor + batch_size)
            chunk = [items[i] for i in order[cursor:stop]]
            planned.append(_Slot(cursor, stop, pool.submit(self._prepare_one, prepare, chunk)))
            cursor = stop

        try:
            for _ in range(self.prefetch):
                submit()
            while planned:
                slot = planned.popleft()
                batch = slot.future.result()  # a prepare error surfaces here, in order
                size = slot.stop - slot.start
                if len(batch.meta) not in (0, size):
                    raise RetrieverError(
                        f"prepare returned {len(batch.meta)} meta entries for {size} items")
                if self.device.type == "cpu" and size > 1 \
                        and batch.nbytes() > self.max_batch_bytes:
                    per_item = batch.nbytes() / size
                    raise _Restart(slot.start, max(1, int(self.max_batch_bytes // per_item)))
                submit()  # keep the background thread busy while the model runs
                out_of_memory = False
                try:
                    with torch.inference_mode(), self._autocast():
                        out = forward(self.to_device(batch))
                except torch.cuda.OutOfMemoryError:
                    out_of_memory = True
                if out_of_memory:  # outside the except: its traceback no longer pins memory
                    del batch
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    if size == 1:
                        raise RetrieverError(
                            "out of GPU memory with a batch of one item",
                            hint="use --dtype bfloat16/float16, a smaller model, or "
                                 "--device cpu")
                    raise _Restart(slot.start, max(1, size // 2))
                out = list(out)
                if len(out) != size:
                    raise RetrieverError(
                        f"forward returned {len(out)} results for a batch of {size} items")
                for position, result in zip(order[slot.start:slot.stop], out):
                    results[position] = result
                if self.progress is not None:
                    self.progress(slot.stop, n)
        finally:
            # Batches prepared for the old plan are dropped; a job already running
            # finishes in the background and its result (or error) is ignored.
            for slot in planned:
                slot.future.cancel()

    def _prepare_one(self, prepare: Callable[[list[T]], PreparedBatch],
                     chunk: list[T]) -> PreparedBatch:
        batch = prepare(chunk)
        if not isinstance(batch, PreparedBatch):
            raise RetrieverError(f"prepare must return a PreparedBatch, got {type(batch)!r}")
        return self._pin(batch)
