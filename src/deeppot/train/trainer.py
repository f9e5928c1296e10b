"""The training loop: sample a batch, energy+forces with a kept graph, loss, Adam step, log, save.

Everything the loop needs (data, model, statistics, optimizer, restart state) is prepared in
:class:`Trainer`'s constructor, so :meth:`Trainer.train_step` and :meth:`Trainer.run` read in one screen.
"""

import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from deeppot import keys
from deeppot.config import InputConfig
from deeppot.data import BatchSampler, DeepmdSystem, batch_sizes, expand_systems, iter_frames, system_probabilities
from deeppot.errors import ConfigError, TrainingDiverged
from deeppot.model import data_label_options
from deeppot.model.build import build_model
from deeppot.model.energy_model import EnergyModel
from deeppot.model.statistics import compute_descriptor_statistics, compute_parameter_statistics
from deeppot.modifier import modify_training_data
from deeppot.nn.precision import (check_mixed_precision_device, enable_mixed_precision, mixed_precision_of,
                                  mixed_precision_section)
from deeppot.runtime import tune_allocator
from deeppot.train.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from deeppot.train.distributed import DiscardedRows, World
from deeppot.train.eta import EtaClock
from deeppot.train.finetune import load_pretrained
from deeppot.train.lcurve import LcurveWriter
from deeppot.train.sel import NeighborStatistics, resolve_model_section
from deeppot.train.step import choose_fast_step
from deeppot.train.adam import FusedAdamStep
from deeppot.train.neighbor_cache import NeighborCache
from deeppot.train.learning_rate import ExpDecaySchedule
from deeppot.train.loss import build_loss
from deeppot.train.tensorboard import TensorboardLog, require_tensorboard
from deeppot.train.unsupported import check_supported

log = logging.getLogger("deeppot")


def batch_to_torch(batch: Dict, device: Optional[torch.device] = None) -> Dict:
    """numpy batch -> torch tensors (float64 / int64) on ``device`` (default: the CPU); flags and counts stay
    Python numbers."""
    out = {}
    for name, value in batch.items():
        is_array = isinstance(value, np.ndarray)
        out[name] = torch.from_numpy(np.ascontiguousarray(value)).to(device) if is_array else value
    return out


def with_model_types(model, batch: Dict) -> Dict:
    """``batch`` (numpy or torch) with the atom types the model sees: an energy fitting with use_aparam_as_mask
    makes atoms with aparam 0 virtual (-1), so that cached neighbor lists and statistics leave them out too."""
    atom_types = getattr(model.fitting, "atom_types", None)
    if atom_types is None or batch.get(keys.APARAM) is None:
        return batch
    atype = atom_types(torch.as_tensor(batch[keys.ATYPE]), torch.as_tensor(batch[keys.APARAM]))
    return {**batch, keys.ATYPE: atype.numpy() if isinstance(batch[keys.ATYPE], np.ndarray) else atype}


def evaluate_batch(
    model: EnergyModel, batch: Dict, create_graph: bool, neighbors: Optional[NeighborCache] = None
) -> Dict[str, torch.Tensor]:
    batch = with_model_types(model, batch)
    return model(
        batch[keys.COORD],
        batch[keys.ATYPE],
        batch.get(keys.BOX),
        batch.get(keys.FPARAM),
        batch.get(keys.APARAM),
        create_graph=create_graph,
        neighbors=None if neighbors is None else neighbors.slots(batch),
    )


@dataclass
class DataSet:
    systems: List[DeepmdSystem]
    sampler: BatchSampler
    batch_sizes: List[int]


def load_dataset(data_cfg, type_map: List[str], fitting_cfg, seed: int, section: str,
                 label_options: Optional[Dict] = None) -> DataSet:
    """The systems of a data section; ``label_options``: extra ``DeepmdSystem.load`` options (tensor labels)."""
    paths = expand_systems(data_cfg.systems)
    systems = [
        DeepmdSystem.load(p, type_map, sort_atoms=True, numb_fparam=fitting_cfg.numb_fparam,
                          numb_aparam=fitting_cfg.numb_aparam, **(label_options or {}))
        for p in paths
    ]
    sizes = batch_sizes(data_cfg.batch_size, [s.natoms for s in systems])
    kept = [(s, b) for s, b in zip(systems, sizes) if b is not None]
    if not kept:
        raise ConfigError(f"training/{section}/batch_size: every system was filtered out; raise the filter limit")
    systems, sizes = [s for s, _ in kept], [b for _, b in kept]
    nbatches = [math.ceil(s.nframes / b) for s, b in zip(systems, sizes)]
    probs = system_probabilities(nbatches, data_cfg.auto_prob, data_cfg.sys_probs)
    return DataSet(systems, BatchSampler(systems, sizes, probs, seed), sizes)


class Trainer:
    def __init__(self, config: InputConfig, restart: Optional[str] = None, init_model: Optional[str] = None,
                 output_dir: Path = Path("."), world: World = World(), device: torch.device = torch.device("cpu"),
                 finetune: Optional[str] = None, model_branch: Optional[str] = None,
                 use_pretrain_script: bool = False):
        """``world``: the data-parallel processes this one trains with (train/distributed.py); ``device``: where the
        model, optimizer and batches live (train/device.py)."""
        tune_allocator()
        self.world = world
        check_supported(config)
        check_mixed_precision_device(config.training.mixed_precision, torch.device(device))
        # --finetune: the pretrained model for input.json's type_map (train/finetune.py), checked before any data
        self.pretrained = load_pretrained(finetune, config.model, model_branch) if finetune else None
        if self.pretrained is not None and use_pretrain_script:  # the model section from the pretrained file
            config = config.model_copy(update={"model": self.pretrained.model_section(config.model)})
        require_tensorboard(config.training)
        self.config = config
        self.output_dir = Path(output_dir)
        tcfg, mcfg = config.training, config.model
        seed = tcfg.seed if tcfg.seed is not None else 0
        labels = data_label_options(mcfg)
        self.train_data = load_dataset(tcfg.training_data, mcfg.type_map, mcfg.fitting_net, seed, "training_data",
                                       labels)
        self.valid_data = (
            load_dataset(tcfg.validation_data, mcfg.type_map, mcfg.fitting_net, seed + 1, "validation_data", labels)
            if tcfg.validation_data is not None else None
        )
        modify_training_data(mcfg, self.train_data.systems + (self.valid_data.systems if self.valid_data else []))
        self.checkpoint_path = resolve_checkpoint(restart or init_model) if (restart or init_model) else None
        checkpoint = load_checkpoint(self.checkpoint_path) if self.checkpoint_path else None
        self.device = torch.device(device)
        self.model = self._prepare_model(checkpoint).to(self.device)
        self.world.broadcast_module(self.model)  # every rank starts from rank 0's weights and statistics
        self.train_data.sampler = self.world.rank_sampler(self.train_data.sampler, seed,
                                                          checkpoint if restart else None)
        lr_cfg = config.learning_rate
        warmup_steps = lr_cfg.warmup_steps
        if lr_cfg.warmup_ratio is not None:
            warmup_steps = int(lr_cfg.warmup_ratio * tcfg.numb_steps)
        self.schedule = ExpDecaySchedule.build(
            lr_cfg.start_lr, lr_cfg.stop_lr, tcfg.numb_steps, lr_cfg.decay_steps, lr_cfg.decay_rate,
            lr_cfg.smooth, warmup_steps, lr_cfg.warmup_start_factor,
        )
        self.lr_scale = self.world.lr_scale(lr_cfg.scale_by_worker)  # the optimizer's lr = lr_scale x schedule
        if self.lr_scale != 1.0:
            log.info("learning rate scaled by %g for %d processes (learning_rate/scale_by_worker %s)",
                     self.lr_scale, self.world.size, lr_cfg.scale_by_worker)
        self.loss = build_loss(config.loss, lr_cfg.start_lr, self.model)
        ocfg = config.optimizer
        optimizer_cls = torch.optim.AdamW if ocfg.type == "AdamW" else torch.optim.Adam
        self.optimizer = optimizer_cls(
            [p for p in self.model.parameters() if p.requires_grad], lr=lr_cfg.start_lr,
            betas=(ocfg.adam_beta1, ocfg.adam_beta2), weight_decay=ocfg.weight_decay, fused=True,
        )
        self.optimizer_step = FusedAdamStep(self.optimizer)  # = optimizer.step(), fewer Python operations (adam.py)
        self.fast_step = choose_fast_step(tcfg.fast_step, tcfg.numb_steps, self.model, self.loss, tcfg.mixed_precision)
        self.train_neighbors = NeighborCache(self.model.rcut, self.model.sel, self.model.mixed_types)
        self.valid_neighbors = NeighborCache(self.model.rcut, self.model.sel, self.model.mixed_types)
        self.start_step = 0
        if restart:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.valid_data is not None and checkpoint.get("valid_sampler") is not None:
                self.valid_data.sampler.load_state_dict(checkpoint["valid_sampler"])
            self.start_step = int(checkpoint["step"])
            log.info("resumed from step %d, checkpoint %s", self.start_step, self.checkpoint_path)
        elif init_model:
            log.info("initialised from the weights of checkpoint %s (step %d); training starts at step 0",
                     self.checkpoint_path, int(checkpoint["step"]))
        self.last_checkpoint: Optional[Path] = self.checkpoint_path if restart else None

    def _prepare_model(self, checkpoint: Optional[Dict]) -> EnergyModel:
        mcfg = mixed_precision_section(self.config.model, self.config.training.mixed_precision)  # float32 networks
        stat = NeighborStatistics(self.train_data.systems, len(mcfg.type_map))
        previous = checkpoint["model_params"] if checkpoint is not None else None
        if self.pretrained is not None:  # an "auto" sel takes the pretrained model's
            previous = self.pretrained.model_params
        self.model_config = resolve_model_section(mcfg, stat, previous)  # every sel a number
        model = build_model(self.model_config)
        mixed = self.config.training.mixed_precision
        enable_mixed_precision(model, None if mixed is None else mixed.model_dump())
        if checkpoint is not None:
            differences = model_section_differences(previous, self.model_params())
            try:
                model.load_state_dict(checkpoint["model"])
            except RuntimeError:  # parameter shapes differ
                raise ConfigError(
                    f"{self.checkpoint_path}: its network sizes differ from input.json's model section:\n  "
                    + "\n  ".join(differences or ["(the checkpoint's tensors have other shapes)"])
                    + "\nSet these keys of input.json to the checkpoint's values, or train from scratch "
                    "without --restart/--init-model."
                ) from None
            if differences:
                log.warning("input.json's model section differs from the checkpoint's (its weights are used with "
                            "input.json's settings):\n  %s", "\n  ".join(differences))
            model.min_nbor_dist = float(checkpoint.get("min_nbor_dist", -1.0))
            return model
        model.min_nbor_dist = stat.min_nbor_dist
        if not self.world.is_main:  # rank 0's statistics arrive by broadcast
            return model
        stat_batches = [
            with_model_types(model, batch)
            for i, (system, bs) in enumerate(zip(self.train_data.systems, self.train_data.batch_sizes))
            for _, batch in zip(range(mcfg.data_stat_nbatch), iter_frames(system, bs, i))
        ]
        if self.pretrained is not None:  # pretrained weights and statistics, output bias refitted on this data
            self.pretrained.apply(model, stat_batches, mcfg.data_stat_protect)
            return model
        compute_descriptor_statistics(model, stat_batches, mcfg.data_stat_protect)
        model.compute_output_bias(stat_batches)
        compute_parameter_statistics(model, stat_batches, mcfg.data_stat_protect)
        return model

    def model_params(self) -> Dict:
        """The resolved model section (every sel a number), as DeePMD-kit's out.json holds it."""
        return self.model_config.model_dump(mode="json")

    def validate(self, lr: float) -> Optional[Dict[str, float]]:
        """Metrics over numb_btch validation batches, weighted by atoms per batch; a metric averages the
        batches that carry its label (NaN in none), e.g. a tensor's atomic and global labels in separate systems."""
        if self.valid_data is None or not self.world.is_main:  # rank 0 alone validates
            return None
        if self.config.training.validation_data.numb_btch == "all":
            return self._validate_all_frames(lr)
        totals: Dict[str, float] = {}
        weights: Dict[str, float] = {}
        for _ in range(self.config.training.validation_data.numb_btch):
            batch = batch_to_torch(self.valid_data.sampler.next_batch(), self.device)
            pred = evaluate_batch(self.model, batch, False, self.valid_neighbors)
            _, metrics = self.loss(pred, batch, batch["natoms"], lr)
            for name, value in metrics.items():
                known = math.isfinite(value)
                totals[name] = totals.get(name, 0.0) + (value * batch["natoms"] if known else 0.0)
                weights[name] = weights.get(name, 0.0) + (batch["natoms"] if known else 0.0)
        return {name: totals[name] / weights[name] if weights[name] else float("nan") for name in totals}

    def _validate_all_frames(self, lr: float) -> Dict[str, float]:
        """Metrics over every validation frame once (numb_btch "all"), in file order, the sampler untouched: each
        RMSE pools the squared errors of all frames, as ``deeppot test`` does over systems (energy and virial per
        atom weighted by frames, forces and atomic tensors by atoms); a metric without labels anywhere is NaN."""
        squares: Dict[str, float] = {}
        weights: Dict[str, float] = {}
        for index, (system, size) in enumerate(zip(self.valid_data.systems, self.valid_data.batch_sizes)):
            for batch in iter_frames(system, size, index):
                batch = batch_to_torch(batch, self.device)
                pred = evaluate_batch(self.model, batch, False, self.valid_neighbors)
                _, metrics = self.loss(pred, batch, batch["natoms"], lr)
                nframes = batch[keys.COORD].shape[0]
                for name, value in metrics.items():
                    per_atom = name == "rmse_f" or name.startswith("rmse_local_")
                    weight = nframes * batch["natoms"] if per_atom else nframes
                    known = math.isfinite(value)
                    squares[name] = squares.get(name, 0.0) + (value**2 * weight if known else 0.0)
                    weights[name] = weights.get(name, 0.0) + (weight if known else 0.0)
        return {name: math.sqrt(squares[name] / weights[name]) if weights[name] else float("nan") for name in squares}

    def save(self, step: int) -> Optional[Path]:
        """Every rank calls this; rank 0 writes the checkpoint (with every rank's data order) and returns it."""
        tcfg = self.config.training
        rank_samplers = self.world.gather(self.train_data.sampler.state_dict())
        if not self.world.is_main:
            return None
        state = {
            "model_params": self.model_params(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": step,
            "sampler": rank_samplers[0],
            "rank_samplers": rank_samplers,
            "valid_sampler": self.valid_data.sampler.state_dict() if self.valid_data else None,
            "min_nbor_dist": self.model.min_nbor_dist,
            "mixed_precision": mixed_precision_of(self.model),
        }
        directory = self.output_dir / (tcfg.save_dir or ".")
        return save_checkpoint(state, directory, tcfg.save_ckpt, step, tcfg.max_ckpt_keep)

    def train_step(self, step_id: int) -> Tuple[Dict[str, float], float]:
        """One optimisation step at 0-based step ``step_id``; returns the batch metrics and the lr."""
        lr = self.schedule.value(step_id)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * self.lr_scale
        batch = batch_to_torch(self.train_data.sampler.next_batch(), self.device)
        if self.fast_step is not None:  # compiled (train/step.py): the gradients come with the loss
            slots = self.train_neighbors.slots(with_model_types(self.model, batch))
            loss, metrics, grads = self.fast_step(batch, lr, slots)
        else:
            pred = evaluate_batch(self.model, batch, True, self.train_neighbors)
            loss, metrics = self.loss(pred, batch, batch["natoms"], lr)
        if not math.isfinite(float(loss.detach())):
            raise self._diverged(step_id + 1, float(loss.detach()), metrics, lr)
        if self.fast_step is not None:  # sets the gradient of every trained parameter (no zero_grad needed)
            self.fast_step.store_gradients(grads)
        else:  # gradients of the parameters only (not of the pair vectors the forces were taken from)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=[p for p in self.model.parameters() if p.requires_grad])
        self.world.average_gradients(self.model.parameters())
        if self.config.training.gradient_max_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.training.gradient_max_norm)
        self.optimizer_step()
        return metrics, lr

    def _diverged(self, step: int, loss: float, metrics: Dict[str, float], lr: float) -> TrainingDiverged:
        """The error for a loss that became NaN or inf at 1-based ``step``; the weights are not updated."""
        bad = [name for name, value in metrics.items() if not math.isfinite(value)]
        kept = (f"the last good checkpoint is {self.last_checkpoint}; restart from it with --restart after the change"
                if self.last_checkpoint else "no checkpoint was saved before it")
        return TrainingDiverged(
            f"step {step}: the loss became {loss} ({', '.join(bad) or 'loss'} not finite) at learning rate "
            f"{lr:.3e}; training stopped, "
            f"{kept}. Likely cause: the learning rate is too large for this model and data (lower "
            "learning_rate/start_lr), or loss prefactors that let the loss grow without bound."
        )

    def run(self) -> None:
        tcfg = self.config.training
        lcurve = LcurveWriter(self.output_dir / tcfg.disp_file, self.loss.metric_names, self.valid_data is not None,
                              restart_step=self.start_step if self.start_step > 0 else None) \
            if self.world.is_main else DiscardedRows()
        tensorboard = TensorboardLog.for_training(tcfg, self.output_dir, enabled=self.world.is_main)
        self.model.train()
        clock = EtaClock(self.start_step, tcfg.numb_steps)
        last_time = clock.elapsed()
        # a live progress bar on a terminal; log lines with the ETA every disp_freq steps in any case
        progress = tqdm(total=tcfg.numb_steps, initial=self.start_step, unit="step", dynamic_ncols=True,
                        disable=not sys.stderr.isatty() or not self.world.is_main)
        with logging_redirect_tqdm(), progress, lcurve, tensorboard:
            for step_id in range(self.start_step, tcfg.numb_steps):
                train_metrics, lr = self.train_step(step_id)
                progress.update()
                step = step_id + 1
                clock.step_done(step)
                tensorboard.write(step, train_metrics, lr)
                if step == 1 or step % tcfg.disp_freq == 0:
                    train_metrics = self.world.average_metrics(train_metrics)
                    valid_metrics = self.validate(lr)
                    lcurve.write(step, train_metrics, valid_metrics, lr)
                    now, eta = clock.elapsed(), clock.eta()
                    headline = self.loss.metric_names[0]  # "rmse" (energy) or the first tensor rmse
                    log.info("step %d/%d: trn %s %.3e%s, lr %.1e, %.2f s since last, ETA %s", step,
                             tcfg.numb_steps, headline, train_metrics[headline],
                             "" if valid_metrics is None else ", val %s %.3e" % (headline, valid_metrics[headline]),
                             lr, now - last_time, "(after the next steps)" if eta is None else _format_duration(eta))
                    last_time = now
                if step % tcfg.save_freq == 0 or step == tcfg.numb_steps:
                    self.last_checkpoint = self.save(step)
                    log.info("saved checkpoint %s", self.last_checkpoint)
        log.info("training finished in %s", _format_duration(clock.elapsed()))


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def model_section_differences(checkpoint, current, path: str = "model") -> List[str]:
    """Lines ``model/<key>: checkpoint X, input.json Y`` for every leaf where two model sections differ (lists of
    sections, such as a hybrid's members, compared item by item when they have the same length)."""
    if isinstance(checkpoint, dict) and isinstance(current, dict):
        lines = []
        for key in sorted(set(checkpoint) | set(current)):
            if key.startswith("_"):
                continue
            lines += model_section_differences(checkpoint.get(key), current.get(key), f"{path}/{key}")
        return lines
    if (isinstance(checkpoint, list) and isinstance(current, list) and len(checkpoint) == len(current)
            and any(isinstance(item, dict) for item in checkpoint)):
        return [line for i, (a, b) in enumerate(zip(checkpoint, current))
                for line in model_section_differences(a, b, f"{path}/{i}")]
    return [] if checkpoint == current else [f"{path}: checkpoint {checkpoint!r}, input.json {current!r}"]


def write_out_json(trainer: Trainer, path: Path) -> None:
    """The normalized input with sel resolved, as DeePMD-kit's out.json."""
    data = trainer.config.normalized()
    data["model"] = trainer.model_params()
    Path(path).write_text(json.dumps(data, indent=4) + "\n")

