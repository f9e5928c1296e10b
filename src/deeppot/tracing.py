"""Whether code runs under graph capture (make_fx, for the AOTInductor export in deeppot.export.aoti; torch.compile,
for the compiled training step in deeppot.train.step)."""

import torch


@torch.jit.unused
def graph_tracing() -> bool:
    """True while make_fx or torch.compile traces a function into a graph: no tensor data can be read then.
    TorchScript code must call it behind ``not torch.jit.is_scripting()``."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return torch.compiler.is_compiling() or get_proxy_mode() is not None
