"""Rewrites of the graph that Inductor compiles for the training step (:mod:`deeppot.train.step`): the same
mathematics in operations that Inductor's CPU code runs faster. Applied as one post-grad pass,
``torch.compile(options={"post_grad_custom_post_pass": StepGraphPass()})``.

tanh from one exp: ``tanh(x) = copysign((1 - e) / (1 + e), x)``, ``e = exp(-2|x|)``.
    Inductor's CPU kernels evaluate ``tanh`` with Sleef's vectorised tanh, ~5.5 ns per float64 element on this
    project's reference machine (one core, AVX-512); this form costs ~2 ns (one vectorised exp, one division). The
    embedding nets of a water training step take tanh of 3.5 million elements.
    Accuracy: e is in (0, 1], so nothing overflows. Against a long-double tanh the absolute error is at most 1.1e-16,
    the same as ``torch.tanh``'s, and the relative error 2.4e-16 for |x| > 0.5 (tests/unit/test_graph_passes.py).
    Near 0 the relative error grows (1 - e keeps the digits of tanh(x) above 1e-16 only), which no network value
    notices: tanh's output only enters sums with weights, where an absolute 1e-16 is the round-off of the matrix
    product anyway. tanh's derivative is unaffected: autograd's ``tanh_backward`` takes it from the output, 1 - y^2.
    Special values: tanh(+-inf) = +-1, tanh(nan) = nan, tanh(-0.0) = -0.0.
    The exp is two nodes of the graph, one per reader, not one node read twice. Inductor's CPU code stores a value
    with several readers if it holds an exp: as one node, the exp itself was stored and every kernel that reads the
    tanh (the layer's output and the backward passes' ``1 - y^2``) recomputed it from the exp and the pre-activation,
    two reads of a rows x width tensor and a division per element. With two exp nodes the tanh is stored and read
    once; within a kernel the two exps are one evaluation. The losses of 200 training steps on 1 thread were bit for
    bit the same; interleaved A/B on water (blocks of 10 steps, median of the paired block ratios): 0.978 of the
    time on 1 thread, 0.976 on 2.

addmm as mm + add: ATen's CPU ``addmm(c, a, b)`` first copies c (a bias broadcast over the rows, or a residual)
    into its output and then accumulates a @ b into it: one more pass over an output of up to 13,000 x 100 for the
    embedding layers. As ``mm`` followed by ``add`` the addition is fused into the elementwise kernel that reads
    the product next (the layer's tanh, or its backward). The sum is the same up to the order of the round-off.

mm with a side of 1 as elementwise products: ``a @ b`` with k = 1 (the first embedding layer's one input) is the
    outer product ``a * b``; with m = 1 or n = 1 (its weight gradient, the derivative with respect to s) a product
    and a sum. Inductor fuses these with the kernels around them instead of writing the product out for a GEMM call.

bmm read as its transpose computed transposed: ``bmm(a, b)`` whose every reader takes ``.transpose(1, 2)`` becomes
    ``bmm(b^T, a^T)``: the same dot products, laid out as they are read. The double backward of the embedding sum
    reads a 192 x 100 x width product so, and an elementwise kernel gathering it with stride ``width`` is slow.

Measured (benchmarks/bench_train_step.py --reference no-rewrites, water, interleaved with the step compiled without
these rewrites): tanh ~5 ms, addmm 7-10 ms, the last two 2-4 ms of a 1-thread step of 135-180 ms; benchmarks/README.md.
"""

from typing import Any, Callable, Dict, Optional

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

aten = torch.ops.aten


def _tanh_from_exp(x: Any, apply: Callable) -> Any:
    """The exp form of tanh (module docstring) of ``x``, each operation made by ``apply(op, *args)`` (aten ops of
    Inductor's post-grad graphs: nothing is left to decompose). The exp is made twice, once for each reader (see
    the module docstring); a compiled kernel evaluates it once."""
    exponent = apply(aten.mul.Tensor, apply(aten.abs.default, x), -2.0)
    numerator = apply(aten.add.Tensor, apply(aten.neg.default, apply(aten.exp.default, exponent)), 1.0)
    denominator = apply(aten.add.Tensor, apply(aten.exp.default, exponent), 1.0)
    return apply(aten.copysign.Tensor, apply(aten.div.Tensor, numerator, denominator), x)


def exp_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh of ``x`` (any shape, floating point) in the exp form that :class:`StepGraphPass` compiles, eagerly."""
    return _tanh_from_exp(x, lambda op, *args: op(*args))


def _node_maker(graph: torch.fx.Graph, fake_mode) -> Callable:
    """``apply(op, *args)`` that adds the node ``op(*args)`` to ``graph`` (at its insertion point) with the fake
    value of its output (shape, dtype, strides), which the passes after this one read."""

    def apply(op, *args):
        node = graph.call_function(op, args)
        with fake_mode:
            node.meta["val"] = op(*[a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args])
        return node

    return apply


def _insert(graph: torch.fx.Graph, before: torch.fx.Node, build: Callable) -> torch.fx.Node:
    """The node that ``build(apply)`` makes, with the nodes it needs, inserted before ``before``."""
    with graph.inserting_before(before):
        return build(_node_maker(graph, before.meta["val"].fake_mode))


def _replace(graph: torch.fx.Graph, node: torch.fx.Node, build: Callable) -> None:
    """Replace ``node`` by what ``build(apply)`` adds before it."""
    node.replace_all_uses_with(_insert(graph, node, build))
    graph.erase_node(node)


def _is_one(size) -> bool:
    """A size known to be 1 when the graph is compiled (a data-dependent size is not)."""
    return isinstance(size, int) and size == 1


def _side_of_one_mm(a: torch.fx.Node, b: torch.fx.Node) -> Optional[Callable]:
    """``build(apply)`` of ``mm(a, b)`` as elementwise products if a side of the product is 1, else None."""
    (m, k), n = [_is_one(size) for size in a.meta["val"].shape], _is_one(b.meta["val"].shape[1])
    if k:  # (m, 1) * (1, n)
        return lambda apply: apply(aten.mul.Tensor, a, b)
    if n:  # sum_k a[i, k] b[k, 0]
        return lambda apply: apply(aten.sum.dim_IntList,
                                   apply(aten.mul.Tensor, a, apply(aten.permute.default, b, [1, 0])), [1], True)
    if m:  # sum_k a[0, k] b[k, j]
        return lambda apply: apply(aten.sum.dim_IntList,
                                   apply(aten.mul.Tensor, apply(aten.permute.default, a, [1, 0]), b), [0], True)
    return None


def _is_batch_transpose(node: torch.fx.Node) -> bool:
    return node.target is aten.permute.default and list(node.args[1]) == [0, 2, 1]


class StepGraphPass(CustomGraphPass):
    """Inductor post-grad pass: the rewrites of the module docstring. ``replaced`` counts the nodes rewritten by this
    instance per kind (zeros when Inductor took the compiled graph from its cache)."""

    def __init__(self):
        self.replaced: Dict[str, int] = {"tanh": 0, "addmm": 0, "mm": 0, "bmm": 0}

    def __call__(self, graph: torch.fx.Graph) -> None:
        for node in list(graph.nodes):
            if node.op != "call_function":
                continue
            if node.target is aten.tanh.default:
                _replace(graph, node, lambda apply, x=node.args[0]: _tanh_from_exp(x, apply))
                self.replaced["tanh"] += 1
            elif node.target is aten.addmm.default and node.kwargs.get("alpha", 1) == node.kwargs.get("beta", 1) == 1:
                c, a, b = node.args[:3]
                _replace(graph, node, lambda apply: apply(aten.add.Tensor, apply(aten.mm.default, a, b), c))
                self.replaced["addmm"] += 1
        for node in list(graph.nodes):  # the mm made of addmm above included
            if node.op == "call_function" and node.target is aten.mm.default:
                build = _side_of_one_mm(*node.args)
                if build is not None:
                    _replace(graph, node, build)
                    self.replaced["mm"] += 1
            elif node.op == "call_function" and node.target is aten.bmm.default:
                readers = list(node.users)
                if readers and all(_is_batch_transpose(reader) for reader in readers):
                    a, b = node.args
                    swapped = _insert(graph, node, lambda apply: apply(aten.bmm.default,
                                                                       apply(aten.permute.default, b, [0, 2, 1]),
                                                                       apply(aten.permute.default, a, [0, 2, 1])))
                    for reader in readers:
                        reader.replace_all_uses_with(swapped)
                        graph.erase_node(reader)
                    graph.erase_node(node)
                    self.replaced["bmm"] += 1

    def uuid(self) -> bytes:
        """Inductor's cache key of this pass: the hash of this file, so an edit here recompiles."""
        return get_hash_for_files((__file__,))
