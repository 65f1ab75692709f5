"""The matrix products of the hand-written SAC step, on the fastest fp32 GEMM torch has here.

torch's ``mm``/``bmm``/``addmm`` on the CPU call MKL. On AMD CPUs MKL takes its AVX2 code
path even where the CPU has AVX-512 (measured on this project's 2-core AMD EPYC machines:
about 85 GFLOP/s per core for a 256 x 256 x 256 product, half the CPU's peak). torch
also ships oneDNN, whose JIT-compiled GEMMs pick the instruction set from the CPU's
features, not its vendor: the same product runs at 145-150 GFLOP/s per core there
(``torch.ops.mkldnn._linear_pointwise``, the fp32 linear layer torch's own compiler
emits). Both are IEEE fp32 with fp32 accumulation; only the summation order differs.

:func:`linear` (``x @ weight.T + bias``, optionally followed by ReLU) and
:func:`weight_grad` (``g.T @ x``) send a product to oneDNN where it is faster (measured
crossover: every dimension of the product >= 64 at a batch of 256; oneDNN is much slower
for a single output column) and to torch otherwise. On CUDA, where this torch has no
oneDNN linear, or under :func:`torch_only`, everything goes to torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

# Below this size on any side of a product, torch's (MKL's) small-matrix paths win.
MIN_ONEDNN_WIDTH = 64


def _onednn_linear() -> Callable[..., torch.Tensor] | None:
    """oneDNN's fp32 linear (X @ W.T + b, with a fused ReLU), if this torch build has it
    for dense CPU tensors and it agrees with torch's own product."""
    try:
        op = torch.ops.mkldnn._linear_pointwise.default  # resolved once: a call is cheaper
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(8, 64, generator=gen)
        w = torch.randn(64, 64, generator=gen)
        b = torch.randn(64, generator=gen)
        expected = torch.addmm(b, x, w.t()).relu_()
        agrees = torch.allclose(op(x, w, b, "relu", [], ""), expected, rtol=1e-5, atol=1e-5)
    except (AttributeError, RuntimeError, NotImplementedError):
        return None
    return op if agrees else None


_LINEAR = _onednn_linear()
_enabled = True


def onednn_active() -> bool:
    """Whether large CPU products go to oneDNN (they do by default, where it exists)."""
    return _LINEAR is not None and _enabled


@contextmanager
def torch_only() -> Iterator[None]:
    """Run every product on torch's own GEMM inside the block, in every thread of the
    process (for comparisons and tests)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def _onednn_fits(x: torch.Tensor, *sizes: int) -> bool:
    """oneDNN for a product with the batch operand x (B, features) and the other ``sizes``
    of the product: x must be row-contiguous (oneDNN would copy it otherwise), and B and
    every size wide enough. (Callers check that ``_LINEAR`` exists.)"""
    return (
        _enabled
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 2
        and x.stride(-1) == 1
        and min(x.shape[0], *sizes) >= MIN_ONEDNN_WIDTH
    )


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False
) -> torch.Tensor:
    """``x @ weight.T (+ bias)``, then ReLU if ``relu``. x (B, in), weight (out, in) (a
    transposed view is read in place), bias (out,)."""
    contiguous_bias = bias is None or bias.is_contiguous()  # oneDNN ignores its strides
    if _LINEAR is not None and contiguous_bias and _onednn_fits(x, *weight.shape):
        return _LINEAR(x, weight, bias, "relu" if relu else "none", [], "")
    out = F.linear(x, weight, bias)
    return out.relu_() if relu else out


def weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g.T @ x`` (out, in): the weight gradient of a layer with input x (B, in) and
    output gradient g (B, out)."""
    if _LINEAR is not None and _onednn_fits(x, g.shape[1], x.shape[1]):
        # oneDNN reads the right operand transposed in place but would copy a transposed
        # left operand inside, more slowly than this explicit copy.
        return _LINEAR(g.t().contiguous(), x.t(), None, "none", [], "")
    return torch.mm(g.t(), x)
