"""Batch sizes, system probabilities and the training batch sampler.

Every step the sampler draws one system (with replacement, by the system probabilities) and
takes the next batch of that system's own shuffled frame order, like DeePMD-kit's PyTorch
data loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from deeppot import keys
from deeppot.data.system import DeepmdSystem
from deeppot.errors import ConfigError, DataError


def batch_sizes(rule: int | list[int] | str, natoms_per_system: list[int]) -> list[int | None]:
    """Frames per batch of each system under a ``batch_size`` rule.

    Rules: an int (every system); a list (one entry per system); ``"auto"`` (= ``"auto:32"``);
    ``"auto:N"`` -> ceil(N / natoms); ``"max:N"`` -> max(1, N // natoms); ``"filter:N"`` like
    ``"max:N"`` but a system with more than N atoms gets None (it is dropped).
    """
    nsys = len(natoms_per_system)
    if isinstance(rule, bool):
        raise ConfigError(
            f"batch_size: {rule!r} is not a valid rule. Use an int, a list or 'auto'."
        )
    if isinstance(rule, int):
        _check_positive(rule, "batch_size")
        return [rule] * nsys
    if isinstance(rule, list):
        if len(rule) != nsys:
            raise ConfigError(
                f"batch_size: the list has {len(rule)} entries but there are {nsys} systems. "
                "Give one batch size per system."
            )
        for value in rule:
            _check_positive(value, "batch_size entry")
        return list(rule)
    if not isinstance(rule, str):
        raise ConfigError(
            f"batch_size: {rule!r} is not a valid rule. Use an int, a list or 'auto'."
        )
    kind, _, number = rule.partition(":")
    if kind == "auto" and not number:
        number = "32"
    if kind not in ("auto", "max", "filter") or not number.isdigit() or int(number) < 1:
        raise ConfigError(
            f"batch_size: {rule!r} is not a valid rule. Use an int, a list, 'auto', "
            "'auto:N', 'max:N' or 'filter:N' with N a positive integer."
        )
    target = int(number)
    if kind == "auto":
        return [math.ceil(target / n) for n in natoms_per_system]
    if kind == "max":
        return [max(1, target // n) for n in natoms_per_system]
    return [None if n > target else max(1, target // n) for n in natoms_per_system]


def _check_positive(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"batch_size: {what} {value!r} must be a positive integer.")


def system_probabilities(
    nbatches: Sequence[int],
    auto_prob: str = "prob_sys_size",
    sys_probs: Sequence[float] | None = None,
) -> np.ndarray:
    """(nsys,) probability of drawing each system at a step; sums to 1.

    Parameters
    ----------
    nbatches
        Batches per epoch of each system, ceil(nframes / batch_size).
    auto_prob
        ``"prob_sys_size"`` (p_i proportional to nbatches_i), ``"prob_uniform"`` or
        ``"prob_sys_size;a:b:w;..."`` (systems a..b-1 share weight w, split by nbatches;
        the block weights are normalised; systems in no block get 0).
    sys_probs
        Explicit probabilities, overriding ``auto_prob``. Entries < 0 share the probability
        left over by the others, in proportion to nbatches.
    """
    nb = np.asarray(nbatches, dtype=np.float64)
    nsys = nb.size
    if sys_probs is not None:
        return _explicit_probabilities(nb, np.asarray(sys_probs, dtype=np.float64))
    if auto_prob == "prob_uniform":
        return np.full(nsys, 1.0 / nsys)
    if auto_prob == "prob_sys_size":
        return nb / nb.sum()
    if auto_prob.startswith("prob_sys_size;"):
        return _block_probabilities(nb, auto_prob)
    raise ConfigError(
        f"auto_prob: {auto_prob!r} is unknown. Use 'prob_sys_size', 'prob_uniform' or "
        "'prob_sys_size;a:b:w;...'."
    )


def _explicit_probabilities(nb: np.ndarray, given: np.ndarray) -> np.ndarray:
    if given.size != nb.size:
        raise ConfigError(
            f"sys_probs: {given.size} entries for {nb.size} systems. Give one per system."
        )
    assigned = given >= 0
    rest = 1.0 - given[assigned].sum()
    if rest < -1e-8:
        raise ConfigError(f"sys_probs: the non-negative entries sum to {1 - rest:.6g} > 1.")
    probs = np.where(assigned, given, 0.0)
    if not np.isclose(rest, 0.0):
        share = np.where(assigned, 0.0, nb)
        if share.sum() == 0:
            raise ConfigError(
                f"sys_probs: the entries sum to {1 - rest:.6g}, not 1, and no entry is negative "
                "to take the rest."
            )
        probs = probs + rest * share / share.sum()
    return probs / probs.sum()


def _block_probabilities(nb: np.ndarray, rule: str) -> np.ndarray:
    probs = np.zeros(nb.size)
    blocks = []
    for block in rule.split(";")[1:]:
        parts = block.split(":")
        try:
            start, end, weight = int(parts[0]), int(parts[1]), float(parts[2])
        except (ValueError, IndexError):
            raise ConfigError(f"auto_prob: block {block!r} must read start:end:weight.") from None
        if weight < 0 or not 0 <= start < end <= nb.size:
            raise ConfigError(
                f"auto_prob: block {block!r} needs 0 <= start < end <= {nb.size} and weight >= 0."
            )
        blocks.append((start, end, weight))
    total = sum(w for _, _, w in blocks)
    if total <= 0:
        raise ConfigError(f"auto_prob: {rule!r} gives no block a positive weight.")
    for start, end, weight in blocks:
        probs[start:end] = weight / total * nb[start:end] / nb[start:end].sum()
    return probs


def make_batch(system: DeepmdSystem, frames: np.ndarray, system_index: int = 0) -> dict:
    """Batch of the given frames of one system.

    Keys: ``keys.COORD`` (bs, N, 3); ``keys.BOX`` (bs, 3, 3) or None; ``keys.ATYPE``
    (bs, N) int64 (per frame: a mixed-type system's frames differ; -1 for a virtual atom); each present label (``keys.ENERGY`` (bs,), ``keys.FORCE`` (bs, N, 3),
    ``keys.VIRIAL`` (bs, 9)); ``keys.find_key(label)`` 1.0/0.0 for energy, force, virial;
    ``keys.FPARAM`` (bs, nfp) and ``keys.APARAM`` (bs, N, nap) when present; each tensor label of
    ``system.tensors`` with its find flag 1.0; ``"natoms"``
    (int N), ``"system_index"`` (int) and ``"frame_index"`` ((bs,) int64 frame numbers).
    All float arrays are float64 copies.
    """
    frames = np.asarray(frames, dtype=np.int64)
    batch: dict = {
        keys.COORD: np.array(system.coord[frames]),
        keys.BOX: None if system.box is None else np.array(system.box[frames]),
        keys.ATYPE: system.frame_types(frames),
    }
    for label in keys.LABELS:
        value = getattr(system, label)
        batch[keys.find_key(label)] = 0.0 if value is None else 1.0
        if value is not None:
            batch[label] = np.array(value[frames])
    for name in (keys.FPARAM, keys.APARAM):
        value = getattr(system, name)
        if value is not None:
            batch[name] = np.array(value[frames])
    for label, value in system.tensors.items():  # a tensor label the system lacks has no find flag (= 0)
        batch[label] = np.array(value[frames])
        batch[keys.find_key(label)] = 1.0
    batch["natoms"] = system.natoms
    batch["system_index"] = system_index
    batch["frame_index"] = frames
    return batch


def iter_frames(
    system: DeepmdSystem, batch_size: int, system_index: int = 0
) -> Iterator[dict]:
    """Batches of consecutive frames in file order (the last one may be smaller), as built
    by :func:`make_batch`; for testing and statistics."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, system.nframes, batch_size):
        stop = min(start + batch_size, system.nframes)
        yield make_batch(system, np.arange(start, stop), system_index)


class BatchSampler:
    """Draws training batches: a system by probability, then its next shuffled batch.

    Parameters
    ----------
    systems
        The systems (filtered-out systems already removed).
    batch_sizes
        Frames per batch of each system.
    probs
        (nsys,) probability of drawing each system; sums to 1.
    seed
        Seed of the ``numpy.random.Generator(PCG64(seed))`` behind all random choices;
        None for a fresh random seed.
    shares
        The frame indices this sampler draws from, per system (one rank's share in data-parallel
        training); None for all frames.

    Each system keeps its own frame permutation and cursor; a batch is the next
    ``batch_size`` frames of the permutation (fewer at the end of an epoch) and a new
    permutation is drawn when it is used up.
    """

    def __init__(
        self,
        systems: Sequence[DeepmdSystem],
        batch_sizes: Sequence[int],
        probs: Sequence[float],
        seed: int | None,
        shares: Sequence[np.ndarray] | None = None,
    ) -> None:
        if not (len(systems) == len(batch_sizes) == len(probs)) or not systems:
            raise ValueError(
                f"need one batch size and probability per system: {len(systems)} systems, "
                f"{len(batch_sizes)} batch sizes, {len(probs)} probabilities"
            )
        self.systems = list(systems)
        self.batch_sizes = [int(b) for b in batch_sizes]
        self.probs = np.asarray(probs, dtype=np.float64)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self.shares = [np.arange(s.nframes) if shares is None else np.asarray(shares[i], dtype=np.int64)
                       for i, s in enumerate(self.systems)]
        self._perms: list[np.ndarray | None] = [None] * len(self.systems)
        self._cursors = [0] * len(self.systems)

    def next_batch(self) -> dict:
        """The next training batch (see :func:`make_batch` for its keys)."""
        index = int(self._rng.choice(len(self.systems), p=self.probs))
        system = self.systems[index]
        perm = self._perms[index]
        share = self.shares[index]
        if perm is None or self._cursors[index] >= len(share):
            perm = share[self._rng.permutation(len(share))]
            self._perms[index] = perm
            self._cursors[index] = 0
        start = self._cursors[index]
        self._cursors[index] = start + self.batch_sizes[index]
        return make_batch(system, perm[start : self._cursors[index]], index)

    def state_dict(self) -> dict:
        """Sampler state as plain Python values (safe for ``torch.save``/``json``)."""
        return {
            "rng": self._rng.bit_generator.state,
            "perms": [None if p is None else p.tolist() for p in self._perms],
            "cursors": list(self._cursors),
            "nframes": [s.nframes for s in self.systems],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; the following batches equal those the saved
        sampler would have produced."""
        nframes = [s.nframes for s in self.systems]
        if list(state["nframes"]) != nframes:
            raise DataError(
                f"the training data changed since the checkpoint: frames per system were "
                f"{list(state['nframes'])}, now {nframes}. Restart with the same systems."
            )
        self._rng.bit_generator.state = state["rng"]
        self._perms = [None if p is None else np.asarray(p, dtype=np.int64) for p in state["perms"]]
        self._cursors = [int(c) for c in state["cursors"]]
