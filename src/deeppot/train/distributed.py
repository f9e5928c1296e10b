"""Data-parallel training over several processes started by ``torchrun`` (one machine or many).

``torchrun --nproc_per_node=N -m deeppot train input.json`` starts N copies of the same training; torchrun
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each, and
:meth:`World.from_environment` joins them into one process group (gloo for CPU tensors, nccl for CUDA
tensors). What each rank does differently from a single-process run:

- **data**: rank r draws its batches (``batch_size`` frames each, so a step sees ``N x batch_size``) from
  its share of every system's frames (frames r, r+N, r+2N, ...; as DeePMD-kit's per-system
  DistributedSampler splits an epoch) in an order from a generator seeded by (seed, r);
- **statistics**: rank 0 computes the descriptor/output statistics and every parameter and buffer is
  broadcast from it, so all ranks start identical;
- **gradients**: averaged over ranks between ``backward`` and ``optimizer.step`` (one all-reduce per
  parameter dtype), so any step implementation that leaves them in ``p.grad`` composes with it;
- **learning rate**: the optimizer's rate is scaled by ``learning_rate/scale_by_worker`` (linear: N,
  sqrt: sqrt(N), none: 1), as DeePMD-kit's TensorFlow trainer does; the loss prefactors and
  ``lcurve.out`` use the unscaled schedule;
- **output**: only rank 0 logs, validates, writes ``lcurve.out``, ``out.json`` and checkpoints; the
  training metrics in ``lcurve.out`` are root-mean-squares over all ranks' batches.

A collective that fails because another rank died raises :class:`~deeppot.errors.DistributedError`;
``DEEPPOT_DIST_TIMEOUT`` (seconds, default 1800) bounds the wait for a rank that hangs. torchrun starts each rank
in a session of its own, so a rank would outlive a SIGKILL of torchrun: on Linux each rank asks the kernel for
SIGTERM when its parent exits (:func:`die_with_parent`).
"""

import ctypes
import datetime
import logging
import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from deeppot.data import BatchSampler
from deeppot.errors import DistributedError
from deeppot.runtime import starting_parent

log = logging.getLogger("deeppot")

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 1800
"""Seconds a collective waits for the other ranks before it fails (``DEEPPOT_DIST_TIMEOUT`` overrides)."""

LR_SCALES: Dict[str, Callable[[int], float]] = {
    "linear": float,
    "sqrt": math.sqrt,
    "none": lambda size: 1.0,
}
"""``learning_rate/scale_by_worker`` -> the optimizer learning-rate factor for a number of ranks."""


def mixed_seed(entropy: Sequence[int]) -> int:
    """One 64-bit seed from several integers (e.g. the training seed and a rank)."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0])


PR_SET_PDEATHSIG = 1
"""Linux prctl option (linux/prctl.h): the signal this process receives when its parent exits."""


def die_with_parent(parent: int) -> None:
    """Have Linux send this process SIGTERM when its parent exits (prctl PR_SET_PDEATHSIG), so that a rank stops
    when torchrun is killed, even by SIGKILL; ``parent``: the pid of the process that started this one.

    Raises :class:`DistributedError` if the parent is already gone (this process has another parent now: it
    exited before the request, which then never fires). Does nothing on systems other than Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
    if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), ctypes.c_ulong(0), ctypes.c_ulong(0),
                  ctypes.c_ulong(0)) != 0:
        log.warning("this training process will not stop by itself if torchrun is killed (prctl "
                    "PR_SET_PDEATHSIG: %s)", os.strerror(ctypes.get_errno()))
        return
    if os.getppid() != parent:
        raise DistributedError(f"the process that started this training process (pid {parent}, torchrun) has "
                               "exited, so this one stops too; start the training again")


def timeout_from_env() -> int:
    """``DEEPPOT_DIST_TIMEOUT`` in seconds (a whole number > 0), else :data:`DEFAULT_TIMEOUT_S`."""
    value = os.environ.get("DEEPPOT_DIST_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    if not value.isdigit() or int(value) == 0:
        raise DistributedError(f"environment variable DEEPPOT_DIST_TIMEOUT={value!r}: not a whole number of seconds "
                               "above 0; set it to e.g. 600 or unset it (default 1800)")
    return int(value)


def backend_reason(exc: Exception) -> str:
    """The gist of a gloo/nccl error: its first line without the source location and the advice after it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # "[.../pair.cc:553] "
    return text.split(". This is typically")[0].rstrip(".")


@dataclass(frozen=True)
class World:
    """The training processes: this one's ``rank`` among ``size`` (``size == 1``: no process group)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> "World":
        """Join the process group torchrun describes in the environment; a single process without it.

        Each of several processes stops when its parent (torchrun) exits. Ranks other than 0 log errors only."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        die_with_parent(starting_parent())
        timeout = datetime.timedelta(seconds=timeout_from_env())
        backend = "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            backend = "cpu:gloo,cuda:nccl"
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"could not join the {size} training processes ({exc}). Start data-parallel training with torchrun "
                "(torchrun --nproc_per_node=N -m deeppot train input.json), which sets RANK, WORLD_SIZE, "
                "MASTER_ADDR and MASTER_PORT"
            ) from None
        world = cls(dist.get_rank(), dist.get_world_size())
        if not world.is_main:
            log.setLevel(logging.ERROR)
        log.info("data-parallel training on %d processes (backend %s)", world.size, backend)
        return world

    def close(self) -> None:
        """Leave the process group (at the end of training)."""
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def _collective(self, what: str, call: Callable[[], T]) -> T:
        """Run a collective; a lost rank becomes a :class:`DistributedError` naming what was under way."""
        try:
            return call()
        except RuntimeError as exc:  # gloo/nccl failures (DistBackendError is a RuntimeError)
            raise DistributedError(
                f"rank {self.rank} of {self.size}: {what} failed because another training process stopped "
                f"(it crashed, was killed, or its machine went away): {backend_reason(exc)}. Training "
                "stopped; restart it from the last checkpoint with --restart (any number of processes)"
            ) from None

    def lr_scale(self, scale_by_worker: str) -> float:
        """The optimizer learning-rate factor for ``learning_rate/scale_by_worker`` (1 for one process)."""
        return LR_SCALES[scale_by_worker](self.size) if self.size > 1 else 1.0

    def frame_shares(self, nframes: Iterable[int]) -> List[np.ndarray]:
        """This rank's frames of each system: r, r+N, r+2N, ... (frame ``r mod nframes`` alone for a system
        with fewer frames than ranks)."""
        return [np.arange(self.rank % n, n, self.size) for n in nframes]

    def rank_sampler(self, sampler: BatchSampler, seed: int, checkpoint: Optional[Dict] = None) -> BatchSampler:
        """This rank's training sampler, made from the single-process ``sampler`` (its systems, batch sizes and
        probabilities); ``checkpoint``: the state to resume from (``--restart``).

        A checkpoint written by as many ranks resumes every rank's own data order exactly; one written by a
        different number of ranks starts each rank on a fresh order seeded by (seed, checkpoint step, rank)."""
        saved = None if checkpoint is None else checkpoint.get("rank_samplers") or [checkpoint["sampler"]]
        resumes = saved is not None and len(saved) == self.size
        if self.size > 1 or (saved is not None and not resumes):
            entropy = [seed, self.rank] if resumes or saved is None else [seed, int(checkpoint["step"]), self.rank]
            sampler = BatchSampler(sampler.systems, sampler.batch_sizes, sampler.probs, mixed_seed(entropy),
                                   shares=self.frame_shares(s.nframes for s in sampler.systems))
        if resumes:
            sampler.load_state_dict(saved[self.rank])
        elif saved is not None:
            log.warning("the checkpoint was written by %d training process(es), this run has %d: each starts a "
                        "fresh data order (weights, optimizer state, step and learning rate resume)",
                        len(saved), self.size)
        return sampler

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Every parameter and buffer of ``module`` set to rank 0's values (in place)."""
        if self.size == 1:
            return
        with torch.no_grad():
            for name, tensor in module.state_dict().items():
                self._collective(f"broadcast of {name}", lambda: dist.broadcast(tensor, src=0))

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """``p.grad`` of every trainable parameter averaged over ranks (a rank without a gradient for ``p``
        counts as zero; ``p.grad`` stays None where no rank has one, so the optimizer skips ``p`` as in a single
        process). One all-reduce per parameter dtype."""
        if self.size == 1:
            return
        groups: Dict[torch.dtype, List[torch.nn.Parameter]] = {}
        for p in parameters:
            if p.requires_grad:
                groups.setdefault(p.dtype, []).append(p)
        for params in groups.values():
            grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
            has_grad = torch.tensor([p.grad is not None for p in params], dtype=params[0].dtype,
                                    device=params[0].device)
            flat = torch.cat([g.reshape(-1) for g in grads] + [has_grad])  # sum(numel) + nparams
            self._collective("the gradient all-reduce", lambda: dist.all_reduce(flat))
            flat /= self.size
            offset = 0
            for p in params:
                n = p.numel()
                p.grad = flat[offset:offset + n].view_as(p).clone()
                offset += n
            for p, seen in zip(params, flat[offset:].tolist()):
                if seen == 0.0:
                    p.grad = None

    def average_metrics(self, metrics: Dict[str, float]) -> Dict[str, float]:
        """Root-mean-square over ranks of each (root-mean-square) metric, leaving out ranks where it is NaN
        (a batch without that label); NaN where every rank has NaN."""
        if self.size == 1:
            return metrics
        names = sorted(metrics)
        known = [math.isfinite(metrics[n]) for n in names]
        sums = torch.tensor([[metrics[n] ** 2 if k else 0.0, float(k)] for n, k in zip(names, known)],
                            dtype=torch.float64)  # nmetrics x 2: sum of squares, count
        self._collective("the metrics all-reduce", lambda: dist.all_reduce(sums))
        return {n: math.sqrt(s / c) if c else float("nan") for n, (s, c) in zip(names, sums.tolist())}

    def gather(self, value: T) -> List[T]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if self.size == 1:
            return [value]
        values: List = [None] * self.size
        self._collective("gathering the ranks' states", lambda: dist.all_gather_object(values, value))
        return values


class DiscardedRows:
    """Stands in for the lcurve writer on ranks other than 0: writes nothing."""

    def write(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> "DiscardedRows":
        return self

    def __exit__(self, *exc) -> None:
        pass
