"""The compiled training step (issue 11): the same mathematics as the eager step, fused by torch.compile.

The eager step (:meth:`deeppot.train.trainer.Trainer.train_step`) runs the model, takes forces with
``autograd.grad(create_graph=True)`` and back-propagates the loss: thousands of small PyTorch operations and a
double-backward graph. Here the same functions (``EnergyModel.atomic_energy``, ``forces_from_pair_gradient``,
``virial_from_pair_gradient``, ``EnergyLoss.weighted``) are composed with ``torch.func`` (grad of a loss that
holds the gradient of the energy) and the whole composition is compiled once by Inductor, which fuses the
elementwise passes of the forward, the force and the loss backward; its kernels are launched by Inductor's C++
wrapper (the Python one, then the uncompiled function, where that fails to build). Before Inductor generates code,
:class:`deeppot.nn.graph_passes.StepGraphPass` rewrites the graph's tanh into one exp, its addmm into mm + add, and
more: operations that Inductor's CPU code runs faster, equal to round-off. The model's code is the same as in the
eager step, so the reference parity and physics tests of the model check what this step computes; the result equals
the eager step to round-off (float64, different summation order), see tests/integration/test_train_step.py.

Neighbor slots, pair vectors and the per-block widths of the descriptor's filled-front trick are computed
eagerly; the widths enter the compiled graph as sizes that vary per batch (one graph for all widths; a batch of
another number of frames, as from a system smaller than the batch size, compiles once more).

When it is used (``training/fast_step``): "auto" compiles when the model is float64, trains energies with the
``ener`` loss, has an se_e2_a or se_e2_r descriptor without a type embedding, and numb_steps is large enough that
the compile time (20-60 s with Inductor's on-disk cache warm, 1.5-2.5 minutes from an empty one) is paid back;
"on" forces it where it applies, "off" never uses it. Where it does not apply the eager step runs and the log
says why.
"""

import logging
import re
from typing import Callable, Dict, List, Optional, Tuple

import torch

from deeppot import keys
from deeppot.model.pairs import forces_from_pair_gradient, sorted_type_counts, virial_from_pair_gradient
from deeppot.nn.graph_passes import StepGraphPass

log = logging.getLogger("deeppot")

FAST_DESCRIPTORS = ("se_e2_a", "se_e2_r")
"""Descriptor types the compiled step is used for (the others train with the eager step)."""
AUTO_MIN_STEPS = 10000
"""With fast_step "auto", the least numb_steps for which compiling pays: measured (benchmarks/bench_train_step.py, 1
thread) the compile costs 35-50 s with Inductor's on-disk cache warm and 90-150 s from an empty cache (a new machine or
venv); it saves 45-70 ms a step on water (192 atoms) and 8-14 ms on CH4 (5 atoms: 13-20 eager against 5-6.5 ms). It
pays back after 1,000-4,000 water steps and 3,000-19,000 CH4 steps (the upper end: an empty cache on a slow
machine); 10,000 covers the usual cases, and any later run of the same input compiles from the warm cache."""


STATIC_GUARD_SOURCE = re.compile(r"^(?:[A-Za-z_.]+\()*(?:self|params|others)\b")
"""The guards that :func:`batch_guards_only` drops by name: expressions rooted in the step object (``self``: its
model and loss, as ``self.wrapper...`` or ``type(self)...``) or in the parameter and buffer aliases it holds."""


def batch_guards_only(entries) -> List[bool]:
    """Dynamo's ``guard_filter_fn`` for the step: keep the guards on the batch (the tensors' shapes and dtypes, the
    type counts, natoms, the label keys) and on global state (grad mode, ...); drop those rooted in the step object
    (``self``: the model's module tree, the loss settings), in its parameter and buffer aliases (``params``,
    ``others``) and in module globals. Those are fixed for a training run: the model and loss are built before the
    first step, the optimizer and restarts change parameter values in place, never their shapes, dtypes or
    devices. Evaluating the ~2,000 guards of the full set took ~0.3 ms a step, a tenth of a CH4 step; a batch of
    another shape or composition still compiles its own graph (tests/integration/test_train_step.py)."""
    return [not (entry.is_global or STATIC_GUARD_SOURCE.match(entry.name)) for entry in entries]


def fast_step_refusal(model, loss, mixed_precision) -> Optional[str]:
    """None if :class:`CompiledEnergyStep` can train ``model`` with ``loss``, else why not (for the log)."""
    from deeppot.model.energy_model import EnergyModel
    from deeppot.train.loss import EnergyLoss

    descriptor = model.descriptor
    if not isinstance(model, EnergyModel) or not isinstance(loss, EnergyLoss):
        return "it trains energy models with the ener loss only"
    if descriptor.type_name not in FAST_DESCRIPTORS or getattr(descriptor, "type_embedding", None) is not None:
        return f"it is implemented for descriptors {', '.join(FAST_DESCRIPTORS)} without a type embedding"
    if hasattr(model, "pair_table"):
        return "a DP/ZBL model (model/use_srtab) trains with the eager step (the compiled one is not verified for it)"
    if descriptor.compressed:
        return "the descriptor is compressed"
    if mixed_precision is not None or any(p.dtype != torch.float64 for p in model.parameters()):
        return "it is exact in float64 only (the model has other precisions or mixed precision)"
    if model.out_bias.device.type != "cpu":
        return "it is compiled for the CPU only"
    return None


class _AtomicEnergy(torch.nn.Module):
    """``model.atomic_energy`` as a module's forward, for ``torch.func.functional_call``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, rij, nei_mask, atype, nei_type, fparam, aparam, type_counts):
        return self.model.atomic_energy(rij, nei_mask, atype, nei_type, fparam, aparam, type_counts)


class CompiledEnergyStep:
    """Loss and parameter gradients of one batch for an energy model, compiled: :meth:`__call__` leaves the
    gradients in ``p.grad`` (as ``loss.backward()`` would) and returns the loss and the batch metrics."""

    def __init__(self, model, loss):
        self.model = model
        self.loss = loss
        self.wrapper = _AtomicEnergy(model)
        # as loss.backward(): no gradient for the empty tensors (an absent idt or bias)
        self.trained = [(name, p) for name, p in self.wrapper.named_parameters() if p.requires_grad and p.numel() > 0]
        # detached aliases of the model's tensors, built once (about 0.2 ms a step for a small model): the optimizer
        # and load_state_dict update parameters and buffers in place, so the aliases always hold the current values
        self.params = {name: p.detach() for name, p in self.trained}
        self.others = {name: t.detach() for name, t in list(self.wrapper.named_parameters())
                       + list(self.wrapper.named_buffers()) if name not in self.params}
        # tanh from one exp, addmm as mm + add, ... (deeppot.nn.graph_passes): ~20 ms of a ~160 ms water step
        self.graph_pass = StepGraphPass()
        # tried in order until one runs: the graph with Inductor's C++ wrapper (it launches the kernels from C++, not
        # Python: about 1 ms a step less on CH4, same kernels and numbers), with the Python wrapper, uncompiled
        options = {"post_grad_custom_post_pass": self.graph_pass, "guard_filter_fn": batch_guards_only}
        self.attempts: List[Tuple[str, Callable]] = [
            ("compiled, C++ wrapper", torch.compile(self._loss_and_grads, fullgraph=True, dynamic=None,
                                                    options={**options, "cpp_wrapper": True})),
            ("compiled, Python wrapper", torch.compile(self._loss_and_grads, fullgraph=True, dynamic=None,
                                                       options=options)),
            ("uncompiled", self._loss_and_grads),
        ]
        # the descriptor's block widths are traced as scalars (.tolist()); one patch object, entered every step
        self.scalar_outputs = torch._dynamo.config.patch(capture_scalar_outputs=True)

    def _loss_and_grads(self, params: Dict, others: Dict, rij, nlist, atype, nei_type, fparam, aparam,
                        type_counts: Optional[List[int]], labels: Dict, prefactors: Tuple, natoms: int):
        """(gradients {name: tensor}, (loss, {label: mse})) of the batch; runs under torch.compile."""

        def energy(state, pairs):
            atom_energy = torch.func.functional_call(self.wrapper, state, (pairs, nlist >= 0, atype, nei_type, fparam,
                                                                          aparam, type_counts))
            return atom_energy.sum(), atom_energy

        def loss_of(trained):
            pair_grad, atom_energy = torch.func.grad(energy, argnums=1, has_aux=True)({**others, **trained}, rij)
            pred = {
                keys.ENERGY: atom_energy.sum(dim=1),
                keys.FORCE: forces_from_pair_gradient(pair_grad, nlist, natoms),
                keys.VIRIAL: virial_from_pair_gradient(pair_grad, rij),
            }
            loss, mses = self.loss.weighted(pred, labels, natoms, prefactors)
            return loss, (loss, mses)

        return torch.func.grad(loss_of, has_aux=True)(params)

    def __call__(self, batch: Dict, lr: float, neighbors) -> Tuple[torch.Tensor, Dict[str, float], Dict]:
        """The loss (0-d tensor), metrics and parameter gradients ({name: tensor}, for :meth:`store_gradients`) of
        ``batch`` (torch tensors from the sampler) at learning rate ``lr``; ``neighbors``: the (index, cell shift)
        slots of the batch (NeighborCache.slots)."""
        model = self.model
        coord, atype, box = model.frames(batch[keys.COORD], batch[keys.ATYPE], batch.get(keys.BOX),
                                         batch.get(keys.APARAM))
        ((_, nlist, rij, nei_type),) = list(model.chunked_pairs(coord, atype, box, 0, neighbors))
        natoms = coord.shape[1]
        labels = {name: batch[name] for name in (keys.ENERGY, keys.FORCE, keys.VIRIAL) if name in batch}
        labels.update({keys.find_key(name): batch[keys.find_key(name)] for name in list(labels)})
        prefactors = tuple(torch.tensor(p, dtype=torch.float64) for p in self.loss.prefactors(lr))
        # sorted types (training data are): each type's fitting net on a slice of the atoms, no scatter kernel; the
        # counts are Python ints, so a batch of another composition compiles once more (then they become symbolic)
        type_counts = sorted_type_counts(atype, model.ntypes)
        inputs = (self.params, self.others, rij.detach(), nlist, atype, nei_type, batch.get(keys.FPARAM),
                  batch.get(keys.APARAM), type_counts, labels, prefactors, natoms)
        while True:
            label, step = self.attempts[0]
            try:
                with self.scalar_outputs:
                    grads, (loss, mses) = step(*inputs)
                break
            except Exception as error:  # no C++ compiler, or a model torch.compile cannot trace: the next attempt
                if len(self.attempts) == 1:
                    raise
                self.attempts.pop(0)
                log.warning("the training step (%s) failed to compile (%s: %s); training continues with it %s "
                            "(same numbers); set training/fast_step to \"off\" to skip compiling", label,
                            type(error).__name__, str(error).splitlines()[0] if str(error) else "",
                            self.attempts[0][0])
        return loss, self.loss.metrics(loss, mses, batch, natoms), grads

    def store_gradients(self, grads: Dict) -> None:
        """Put the gradients of :meth:`__call__` into ``p.grad``, where ``loss.backward()`` leaves them."""
        for name, p in self.trained:
            p.grad = grads[name]


def choose_fast_step(setting: str, numb_steps: int, model, loss, mixed_precision) -> Optional[CompiledEnergyStep]:
    """The compiled step for ``training/fast_step`` = ``setting`` ("auto", "on", "off"), or None for the eager step;
    logs which step trains and why."""
    if setting == "off":
        log.info("eager training step (training/fast_step off)")
        return None
    refusal = fast_step_refusal(model, loss, mixed_precision)
    if refusal is not None:
        (log.warning if setting == "on" else log.info)(
            "eager training step: the compiled step (training/fast_step %s) does not apply, %s", setting, refusal)
        return None
    if setting == "auto" and numb_steps < AUTO_MIN_STEPS:
        log.info("eager training step (training/fast_step auto compiles from numb_steps >= %d; set it to \"on\" to "
                 "compile anyway)", AUTO_MIN_STEPS)
        return None
    log.info("compiled training step (training/fast_step %s): the first step compiles it (20 s to 2.5 min; cached "
             "on disk for later runs)", setting)
    return CompiledEnergyStep(model, loss)
