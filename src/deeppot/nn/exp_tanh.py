"""tanh from one exp, for compiled graphs: ``tanh(x) = sign(x) (1 - e) / (1 + e)``, ``e = exp(-2|x|)``.

Why: Inductor's CPU kernels evaluate ``tanh`` with Sleef's vectorised tanh, ~5.5 ns per float64 element on this
project's reference machine (one core, AVX-512); this form costs ~2 ns (one vectorised exp, one division). The
embedding nets of a water training step take tanh of 3.5 million elements, so the compiled step is ~13 ms
faster (benchmarks/README.md, "Training step").

Accuracy: e is in (0, 1], so nothing overflows. Against a long-double tanh the absolute error is at most 1.1e-16,
the same as ``torch.tanh``'s, and the relative error 2.4e-16 for |x| > 0.5 (tests/unit/test_exp_tanh.py). Near 0
the relative error grows (1 - e keeps the digits of tanh(x) above 1e-16 only), which no network value notices:
tanh's output only enters sums with weights, where an absolute 1e-16 is the round-off of the matrix product
anyway. tanh's derivative is unaffected: autograd's ``tanh_backward`` takes it from the output, 1 - y^2.
Special values: tanh(+-inf) = +-1, tanh(nan) = nan, tanh(-0.0) = -0.0.

:class:`ExpTanhPass` rewrites every ``aten.tanh`` of a graph that Inductor is about to compile into this form
(``torch.compile(options={"post_grad_custom_post_pass": ExpTanhPass()})``); :func:`exp_tanh` evaluates the same
form eagerly, for the tests. Both build it from :func:`_tanh_from_exp`, so the two cannot drift apart.
"""

from typing import Any, Callable

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

aten = torch.ops.aten


def _tanh_from_exp(x: Any, apply: Callable) -> Any:
    """The form of the module docstring for ``x``, each operation made by ``apply(op, *args)`` (an aten op of
    Inductor's post-grad graphs: no decomposition left to do)."""
    e = apply(aten.exp.default, apply(aten.mul.Tensor, apply(aten.abs.default, x), -2.0))
    numerator = apply(aten.add.Tensor, apply(aten.neg.default, e), 1.0)
    denominator = apply(aten.add.Tensor, e, 1.0)
    return apply(aten.copysign.Tensor, apply(aten.div.Tensor, numerator, denominator), x)


def exp_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh of ``x`` (any shape, floating point) in the form of the module docstring, evaluated eagerly."""
    return _tanh_from_exp(x, lambda op, *args: op(*args))


class ExpTanhPass(CustomGraphPass):
    """Inductor post-grad pass: each ``aten.tanh.default`` node becomes the exp form (module docstring).

    ``replaced`` counts the nodes rewritten by this instance (0 when Inductor took the graph from its cache)."""

    def __init__(self):
        self.replaced = 0

    def __call__(self, graph: torch.fx.Graph) -> None:
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target is not aten.tanh.default:
                continue
            fake_mode = node.meta["val"].fake_mode

            def add_node(op, *args):
                new = graph.call_function(op, args)
                with fake_mode:  # the output's shape, dtype and strides, which the later passes read
                    new.meta["val"] = op(*[a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args])
                return new

            with graph.inserting_before(node):
                result = _tanh_from_exp(node.args[0], add_node)
            node.replace_all_uses_with(result)
            graph.erase_node(node)
            self.replaced += 1

    def uuid(self) -> str:
        """Inductor's cache key of this pass: the hash of this file, so an edit here recompiles."""
        return get_hash_for_files((__file__,))
