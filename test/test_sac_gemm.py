"""The step's matrix products: oneDNN where it is faster, torch otherwise, same values."""

from __future__ import annotations

import pytest
import torch

from sac_ros.sac import gemm

needs_onednn = pytest.mark.skipif(not gemm.onednn_active(), reason="no oneDNN linear")


def exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.double() @ b.double()


@needs_onednn
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("transposed_weight", [False, True])
def test_linear_matches_float64_products(relu, transposed_weight):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(256, 256, generator=gen)
    weight = torch.randn(192, 256, generator=gen)
    if transposed_weight:  # a view of a (in, out) tensor, as the critic ensemble stores it
        weight = weight.t().contiguous().t()
        assert not weight.is_contiguous()
    bias = torch.randn(192, generator=gen)
    got = gemm.linear(x, weight, bias, relu=relu)
    want = exact(x, weight.t()) + bias.double()
    if relu:
        want = want.clamp_min(0.0)
    assert got.shape == (256, 192) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)
    with gemm.torch_only():
        plain = gemm.linear(x, weight, bias, relu=relu)
    torch.testing.assert_close(got, plain, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("layout", ["strided", "expanded"])
def test_linear_with_a_non_contiguous_bias(layout):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(256, 128, generator=gen)
    weight = torch.randn(96, 128, generator=gen)
    if layout == "strided":
        bias = torch.randn(192, generator=gen)[::2]
    else:
        bias = torch.randn(1, generator=gen).expand(96)
    got = gemm.linear(x, weight, bias)
    torch.testing.assert_close(got.double(), exact(x, weight.t()) + bias.double(),
                               rtol=1e-5, atol=1e-4)  # fmt: skip


@needs_onednn
def test_weight_gradient_matches_float64_product():
    gen = torch.Generator().manual_seed(2)
    g, x = torch.randn(256, 128, generator=gen), torch.randn(256, 96, generator=gen)
    got = gemm.weight_grad(g, x)
    assert got.shape == (128, 96)
    torch.testing.assert_close(got.double(), exact(g.t(), x), rtol=1e-5, atol=1e-4)


def test_narrow_products_and_torch_only_use_torch_bit_for_bit():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(256, 256, generator=gen)
    for weight, bias in ((torch.randn(1, 256, generator=gen), torch.randn(1)),  # a Q head
                         (torch.randn(256, 23, generator=gen).t(), None)):  # to the input
        torch.testing.assert_close(gemm.linear(x, weight, bias),
                                   torch.nn.functional.linear(x, weight, bias),
                                   rtol=0, atol=0)  # fmt: skip
    g = torch.randn(256, 1, generator=gen)
    torch.testing.assert_close(gemm.weight_grad(g, x), g.t() @ x, rtol=0, atol=0)
    with gemm.torch_only():
        assert not gemm.onednn_active()
        w = torch.randn(256, 256, generator=gen)
        torch.testing.assert_close(gemm.linear(x, w), x @ w.t(), rtol=0, atol=0)
    # A row-strided input (oneDNN would copy it) also stays on torch.
    strided = torch.randn(256, 512, generator=gen)[:, ::2]
    w = torch.randn(128, 256, generator=gen)
    torch.testing.assert_close(gemm.linear(strided, w), strided @ w.t(), rtol=0, atol=0)
