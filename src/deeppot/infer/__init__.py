"""Inference with frozen models: DeepPot, DeepDipole, DeepPolar (numpy in, numpy out) and the ASE calculator.

The evaluators are imported lazily so that ``import dpdata`` (which loads our dpdata driver through its
plugin entry point) does not pay for importing torch.
"""

__all__ = ["DeepDipole", "DeepPolar", "DeepPot"]


def __getattr__(name):
    if name in __all__:
        from deeppot.infer import deep_pot

        return getattr(deep_pot, name)
    raise AttributeError(name)
