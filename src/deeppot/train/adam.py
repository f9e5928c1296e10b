"""A leaner call of the fused Adam/AdamW update (issue 11: per-step overhead of small systems).

``torch.optim.Adam(fused=True).step()`` spends most of its ~0.6 ms on a small model (CH4: 44 tensors) in Python:
it rebuilds the lists of parameters, gradients and moment tensors from ``optimizer.state`` and regroups them by
device and dtype every step. The arithmetic is two kernels: ``_foreach_add_`` on the step counters and
``_fused_adam_`` (``_fused_adamw_`` for AdamW) on all tensors at once. :class:`FusedAdamStep` keeps the lists
and calls those two kernels with the group's hyper-parameters read each step (the learning rate changes every
step), so the numbers and the optimizer's state (``state_dict`` for checkpoints) are exactly those of
``optimizer.step()``; tests/unit/test_fused_adam_step.py checks the weights and moments bit for bit.

The step counters (one 0-d tensor per parameter, all equal) become views into one buffer, so that one ``add_``
counts the step for all of them: ``_foreach_add_`` on 44 0-d tensors took ~0.2 ms, a twentieth of a compiled CH4
training step. The state keeps one counter per parameter (views), with the same values.

Where the lists cannot stand for ``optimizer.step()`` (the state is not created yet, the parameters with a
gradient are not those of the first step, several parameter groups, amsgrad/maximize, tensors of several dtypes
or devices) it calls ``optimizer.step()`` itself.
"""

from typing import List, Optional

import torch


class FusedAdamStep:
    """``optimizer.step()`` of a fused ``torch.optim.Adam``/``AdamW`` (one parameter group) with fewer Python
    operations; call it where ``optimizer.step()`` would be called."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.lists: Optional[List[List[torch.Tensor]]] = None  # params, exp_avgs, exp_avg_sqs, steps (once state exists)
        self.steps = torch.zeros(0)  # the step counters of lists[3], which are views of it (one per parameter)
        self.with_grad: List[torch.Tensor] = []  # the parameters in the lists, which must have a gradient
        self.without_grad: List[torch.Tensor] = []  # the others, which must have none (else optimizer.step())

    def applies(self) -> bool:
        """True if the two kernels reproduce ``optimizer.step()`` for this optimizer (before its state exists too)."""
        groups = self.optimizer.param_groups
        if type(self.optimizer) not in (torch.optim.Adam, torch.optim.AdamW) or len(groups) != 1:
            return False
        group = groups[0]
        params = group["params"]
        return (bool(group.get("fused")) and not group["amsgrad"] and not group["maximize"] and len(params) > 0
                and len({(p.dtype, p.device) for p in params}) == 1)

    def __call__(self) -> None:
        group = self.optimizer.param_groups[0]
        grads = [] if self.lists is None else [p.grad for p in self.with_grad]
        if self.lists is None or any(g is None for g in grads) or any(p.grad is not None for p in self.without_grad):
            self.optimizer.step()  # creates the state on the first call
            if self.lists is None:
                self._keep_lists()
            return
        params, exp_avgs, exp_avg_sqs, steps = self.lists
        beta1, beta2 = group["betas"]
        kernel = torch._fused_adamw_ if isinstance(self.optimizer, torch.optim.AdamW) else torch._fused_adam_
        with torch.no_grad():
            self.steps.add_(1)  # every counter of ``steps`` (its views)
            kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                   beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)

    def _keep_lists(self) -> None:
        """The parameters that have a gradient (as Adam, the others are left alone: e.g. an empty bias the
        loss does not reach) and their state tensors, once ``optimizer.step()`` created them."""
        if not self.applies():
            return
        params = self.optimizer.param_groups[0]["params"]
        self.with_grad = [p for p in params if p.grad is not None]
        self.without_grad = [p for p in params if p.grad is None]
        states = [self.optimizer.state.get(p, {}) for p in self.with_grad]
        if self.with_grad and all("exp_avg" in s for s in states) and all(s["step"].dim() == 0 for s in states) \
                and len({s["step"].dtype for s in states}) == 1:
            self.steps = torch.stack([s["step"] for s in states])
            for index, state in enumerate(states):
                state["step"] = self.steps[index]
            self.lists = [[p.detach() for p in self.with_grad], [s["exp_avg"] for s in states],
                          [s["exp_avg_sq"] for s in states], [s["step"] for s in states]]
