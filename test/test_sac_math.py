"""The squashed Gaussian's log-probability and the smoothed exploration noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from sac_ros.sac import SmoothedNoise
from sac_ros.sac.squash import squashed_sample, tanh_log_abs_det


def test_log_prob_matches_torch_transformed_distribution():
    gen = torch.Generator().manual_seed(3)
    mean = torch.randn(500, 4, generator=gen, dtype=torch.float64)
    log_std = torch.empty(500, 4, dtype=torch.float64).uniform_(-2.0, 0.5, generator=gen)
    latent = torch.randn(500, 4, generator=gen, dtype=torch.float64)
    action, log_prob = squashed_sample(mean, log_std, latent)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    expected = reference.log_prob(action).sum(-1)
    # Away from |a| -> 1, where torch's atanh of the rounded action loses precision.
    keep = (action.abs() < 0.999).all(-1)
    assert keep.sum() > 400
    torch.testing.assert_close(log_prob[keep], expected[keep], rtol=1e-9, atol=1e-9)


def test_log_prob_gradient_matches_reference():
    mean = torch.tensor([[0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([[-0.5, 0.1]], dtype=torch.float64, requires_grad=True)
    latent = torch.tensor([[0.7, -1.1]], dtype=torch.float64)
    _, log_prob = squashed_sample(mean, log_std, latent)
    grads = torch.autograd.grad(log_prob.sum(), (mean, log_std))
    u = mean + log_std.exp() * latent
    reference = Normal(mean, log_std.exp()).log_prob(u) - torch.log1p(-(torch.tanh(u) ** 2))
    ref_grads = torch.autograd.grad(reference.sum(), (mean, log_std))
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_tanh_correction_is_stable_where_naive_form_fails():
    u = torch.tensor([0.0, 5.0, 20.0, -40.0, 100.0], dtype=torch.float32)
    stable = tanh_log_abs_det(u)
    assert torch.isfinite(stable).all()
    # log(1 - tanh(u)^2) = log(4) - 2|u| - 2 log(1 + exp(-2|u|)), in float64 for reference.
    u64 = u.double()
    exact = math.log(4.0) - 2 * u64.abs() - 2 * torch.log1p(torch.exp(-2 * u64.abs()))
    torch.testing.assert_close(stable.double(), exact, rtol=1e-5, atol=1e-5)
    naive = torch.log(1 - torch.tanh(u) ** 2)
    assert not torch.isfinite(naive).all()  # the naive form gives -inf at large |u|


@pytest.mark.parametrize("coefficient", [0.0, 0.5, 0.9])
def test_smoothed_noise_unit_variance_and_lag1_autocorrelation(coefficient):
    dim, steps = 4, 20_000
    noise = SmoothedNoise(dim, coefficient, np.random.default_rng(11))
    noise.reset()
    x = np.stack([noise.sample() for _ in range(steps)]).astype(np.float64)
    # Effective sample size of an AR(1) mean/variance estimate shrinks by (1-a)/(1+a) and
    # (1-a^2)/(1+a^2); tolerances are ~5 standard errors.
    n_eff_var = steps * dim * (1 - coefficient**2) / (1 + coefficient**2)
    assert abs(x.var() - 1.0) < 5 * math.sqrt(2.0 / n_eff_var)
    lag1 = np.mean([np.corrcoef(x[:-1, j], x[1:, j])[0, 1] for j in range(dim)])
    assert abs(lag1 - coefficient) < 5 * math.sqrt((1 - coefficient**2) / (steps * dim)) + 1e-3
    assert abs(x.mean()) < 5 * math.sqrt((1 + coefficient) / (1 - coefficient) / (steps * dim))


def test_smoothed_noise_marginal_is_unit_from_the_first_step():
    # Many short episodes: the first and the second sample of each are N(0, 1).
    noise = SmoothedNoise(1, 0.95, np.random.default_rng(5))
    firsts, seconds = [], []
    for _ in range(4000):
        noise.reset()
        firsts.append(noise.sample()[0])
        seconds.append(noise.sample()[0])
    for values in (firsts, seconds):
        assert abs(np.var(values) - 1.0) < 5 * math.sqrt(2.0 / 4000)
    assert np.corrcoef(firsts, seconds)[0, 1] > 0.9


def test_smoothed_noise_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    for coefficient in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="coefficient"):
            SmoothedNoise(2, coefficient, rng)
    with pytest.raises(ValueError, match="action_dim"):
        SmoothedNoise(0, 0.5, rng)
