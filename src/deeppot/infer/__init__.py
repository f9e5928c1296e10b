"""Inference with frozen models: DeepPot (numpy in, numpy out) and the ASE calculator.

``DeepPot`` is imported lazily so that ``import dpdata`` (which loads our dpdata driver through its
plugin entry point) does not pay for importing torch.
"""

__all__ = ["DeepPot"]


def __getattr__(name):
    if name == "DeepPot":
        from deeppot.infer.deep_pot import DeepPot

        return DeepPot
    raise AttributeError(name)
