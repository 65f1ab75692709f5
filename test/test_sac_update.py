"""One SAC gradient step: what each part changes, the target, the temperature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from sac_ros.sac import Batch, ObsSpec, SACAgent, SACConfig, gemm
from sac_ros.sac.networks import PixelEncoder
from sac_ros.sac.optim import FastAdam

SMALL = dict(hidden=(32, 32), batch_size=16, device="cpu")


def vector_batch(spec: ObsSpec, action_dim: int, size: int, seed: int = 0, **flags) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch.from_numpy(
        spec,
        rng.standard_normal((size, spec.vector_dim)),
        rng.uniform(-1, 1, (size, action_dim)),
        rng.standard_normal(size),
        rng.standard_normal((size, spec.vector_dim)),
        flags.get("terminated", np.zeros(size)),
        flags.get("truncated", np.zeros(size)),
    )


def pixel_batch(spec: ObsSpec, action_dim: int, size: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)

    def obs():
        return {
            "image": rng.integers(0, 256, (size, *spec.image_shape), dtype=np.uint8),
            "proprio": rng.standard_normal((size, spec.vector_dim)),
        }

    return Batch.from_numpy(
        spec, obs(), rng.uniform(-1, 1, (size, action_dim)), rng.standard_normal(size), obs(),
        np.zeros(size), np.zeros(size),
    )  # fmt: skip


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("pixels", [False, True])
def test_actor_update_leaves_critics_unchanged_and_vice_versa(pixels):
    if pixels:
        spec = ObsSpec.pixels((16, 16, 3), proprio_dim=5)
        agent = SACAgent(spec, 3, SACConfig(**SMALL))
        batch = pixel_batch(spec, 3, 16)
    else:
        spec = ObsSpec.vector(6)
        agent = SACAgent(spec, 3, SACConfig(**SMALL))
        batch = vector_batch(spec, 3, 16)
    actor0, critic0, target0 = (
        snapshot(agent.actor),
        snapshot(agent.critic),
        snapshot(agent.critic_target),
    )
    alpha0 = agent.log_alpha.detach().clone()
    agent.update_actor(batch)
    actor1 = snapshot(agent.actor)
    assert not same(actor0, actor1), "the actor step must change the actor"
    assert same(critic0, snapshot(agent.critic))
    assert same(target0, snapshot(agent.critic_target))
    assert torch.equal(alpha0, agent.log_alpha.detach())
    agent.update_critic(batch)
    assert not same(critic0, snapshot(agent.critic)), "the critic step must change the critics"
    assert same(actor1, snapshot(agent.actor))
    assert same(target0, snapshot(agent.critic_target))
    assert torch.equal(alpha0, agent.log_alpha.detach())


def test_target_critic_follows_by_polyak_averaging():
    spec = ObsSpec.vector(4)
    agent = SACAgent(spec, 2, SACConfig(tau=0.1, **SMALL))
    target0 = snapshot(agent.critic_target)
    agent.update(vector_batch(spec, 2, 16))
    pairs = zip(agent.critic.parameters(), agent.critic_target.parameters(), strict=True)
    for old, (online, new) in zip(target0, pairs, strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online.detach())


@pytest.mark.parametrize("target_entropy, rises", [(50.0, True), (-50.0, False)])
def test_temperature_rises_below_target_entropy_and_falls_above(target_entropy, rises):
    spec = ObsSpec.vector(4)
    agent = SACAgent(spec, 2, SACConfig(target_entropy=target_entropy, **SMALL))
    batch = vector_batch(spec, 2, 16)
    before = agent.alpha
    stats = agent.update(batch)
    assert (stats["entropy"] < target_entropy) if rises else (stats["entropy"] > target_entropy)
    assert (agent.alpha > before) if rises else (agent.alpha < before)
    for _ in range(20):
        agent.update(batch)
    assert (agent.alpha > before * 1.003) if rises else (agent.alpha < before / 1.003)


def numpy_mlp(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


def test_target_is_min_of_twins_minus_alpha_log_prob_by_hand():
    spec = ObsSpec.vector(3)
    agent = SACAgent(spec, 2, SACConfig(hidden=(8, 8), gamma=0.9, init_alpha=0.37, device="cpu"))
    batch = vector_batch(spec, 2, 4, seed=4, terminated=np.array([0.0, 1.0, 0.0, 0.0]))
    latent = torch.randn(4, 2, generator=torch.Generator().manual_seed(9))
    alpha = agent.log_alpha.detach().exp()
    got = agent.compute_target(batch, alpha, latent).numpy()

    actor = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in agent.actor.layers]
    head = agent.actor.head
    actor.append((head.weight.detach().numpy().T, head.bias.detach().numpy()))
    next_obs = batch.next_obs.numpy()
    out = numpy_mlp(actor, next_obs)
    mean, log_std = out[:, :2], np.clip(out[:, 2:], -20, 2)
    action = np.tanh(mean + np.exp(log_std) * latent.numpy())
    dist = TransformedDistribution(
        Normal(torch.from_numpy(mean).double(), torch.from_numpy(np.exp(log_std)).double()),
        [TanhTransform()],
    )
    log_prob = dist.log_prob(torch.from_numpy(action).double()).sum(-1).numpy()
    q = []
    for member in range(2):
        layers = [
            (layer.weight[member].numpy(), layer.bias[member, 0].numpy())
            for layer in agent.critic_target.layers
        ]
        q.append(numpy_mlp(layers, np.concatenate([next_obs, action], 1))[:, 0])
    assert not np.allclose(q[0], q[1])  # the twins differ, so the minimum matters
    soft = np.minimum(q[0], q[1]) - 0.37 * log_prob
    expected = batch.reward.numpy() + 0.9 * (1 - batch.terminated.numpy()) * soft
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_truncation_bootstraps_and_termination_does_not():
    spec = ObsSpec.vector(3)
    agent = SACAgent(spec, 2, SACConfig(**SMALL))
    row = vector_batch(spec, 2, 1, seed=2)

    def with_flags(terminated: float, truncated: float) -> Batch:
        return Batch(
            row.obs, row.action, row.reward, row.next_obs,
            torch.tensor([terminated]), torch.tensor([truncated]),
        )  # fmt: skip

    alpha = agent.log_alpha.detach().exp()
    latent = torch.randn(1, 2, generator=torch.Generator().manual_seed(1))
    plain = agent.compute_target(with_flags(0, 0), alpha, latent)
    truncated = agent.compute_target(with_flags(0, 1), alpha, latent)
    terminated = agent.compute_target(with_flags(1, 0), alpha, latent)
    both = agent.compute_target(with_flags(1, 1), alpha, latent)
    assert torch.equal(truncated, plain)
    assert torch.equal(terminated, row.reward) and torch.equal(both, row.reward)
    assert not torch.equal(plain, row.reward)


def test_twin_critics_are_independent_networks():
    spec = ObsSpec.pixels((8, 8, 3), proprio_dim=2)
    agent = SACAgent(spec, 2, SACConfig(hidden=(16, 16), device="cpu"))
    batch = pixel_batch(spec, 2, 5)
    q0 = agent.critic(batch.obs, batch.action).detach()
    with torch.no_grad():  # perturb only member 1: its encoder filters and its layers
        agent.critic.encoder.conv1.weight[4:] += 0.5
        agent.critic.encoder.conv2.weight[4:] += 0.5
        for layer in agent.critic.layers:
            layer.weight[1] += 0.1
    q1 = agent.critic(batch.obs, batch.action).detach()
    assert torch.equal(q0[0], q1[0])
    assert not torch.allclose(q0[1], q1[1])


def test_pixel_encoder_members_equal_separate_convolutions():
    torch.manual_seed(0)
    encoder = PixelEncoder((16, 16, 3), members=2)
    image = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8)
    features = encoder(image)
    assert features.shape == (2, 3, 4 * 4 * 4)
    x = image.permute(0, 3, 1, 2).float() / 255 * 2 - 1
    for m in range(2):
        sl = slice(4 * m, 4 * m + 4)
        y = torch.nn.functional.conv2d(
            x, encoder.conv1.weight[sl], encoder.conv1.bias[sl], padding=1
        )
        y = torch.nn.functional.max_pool2d(torch.relu(y), 2, 2)
        y = torch.nn.functional.conv2d(
            y, encoder.conv2.weight[sl], encoder.conv2.bias[sl], padding=1
        )
        y = torch.nn.functional.max_pool2d(torch.relu(y), 2, 2)
        torch.testing.assert_close(features[m], y.flatten(1), rtol=1e-5, atol=1e-6)


def test_update_statistics_and_counters():
    spec = ObsSpec.vector(5)
    agent = SACAgent(spec, 2, SACConfig(**SMALL))
    stats = agent.update(vector_batch(spec, 2, 16))
    assert set(stats) == {"critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean"}
    assert all(np.isfinite(v) for v in stats.values())
    assert stats["alpha"] == pytest.approx(1.0)  # the alpha used, before its own step
    assert agent.update(vector_batch(spec, 2, 16), stats=False) == {}
    assert agent.num_updates == 2


def test_act_ranges_and_input_checks():
    spec = ObsSpec.vector(5)
    agent = SACAgent(spec, 3, SACConfig(**SMALL))
    obs = np.random.default_rng(0).standard_normal(5) * 100
    a = agent.act(obs)
    assert a.shape == (3,) and np.all(np.abs(a) <= 1)
    batch = agent.act(np.stack([obs, obs]), deterministic=True)
    assert batch.shape == (2, 3)
    # Equal rows give equal actions up to rounding: a BLAS may compute the rows of one
    # product on different code paths (MKL does on AMD CPUs), so not always bit for bit.
    np.testing.assert_allclose(batch[0], batch[1], rtol=1e-5, atol=1e-6)
    latent = np.array([0.5, -0.5, 0.0])
    np.testing.assert_array_equal(agent.act(obs, latent=latent), agent.act(obs, latent=latent))
    with pytest.raises(ValueError, match="shape"):
        agent.act(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        agent.act(np.full(5, np.nan))
    with pytest.raises(ValueError, match="latent"):
        agent.act(obs, latent=np.zeros(2))
    with pytest.raises(ValueError, match="uint8"):
        SACAgent(ObsSpec.pixels((8, 8, 3), 1), 1, SACConfig(**SMALL)).act(
            {"image": np.zeros((8, 8, 3)), "proprio": np.zeros(1)}
        )


def test_config_rejects_bad_values():
    for bad in (dict(gamma=1.5), dict(tau=0.0), dict(lr=-1.0), dict(hidden=()),
                dict(smoothing=1.0), dict(device="gpu9000"), dict(init_alpha=0.0)):  # fmt: skip
        with pytest.raises(ValueError):
            SACConfig(**bad)


def test_fast_adam_matches_torch_adam():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fast = FastAdam(params, lr=1e-2)
    slow = torch.optim.Adam(reference, lr=1e-2, foreach=False, fused=False)
    for step in range(5):
        grads = [torch.randn_like(p) * (step + 1) for p in params]
        fast.zero_grad()
        slow.zero_grad()
        for p, q, g in zip(params, reference, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        fast.step()
        slow.step()
    for p, q in zip(params, reference, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    state = fast.state_dict()["state"]
    assert float(state[0]["step"]) == 5.0
    # A checkpoint round trip continues the same sequence; the saved step counts are
    # separate tensors (safetensors refuses shared memory).
    saved = fast.state_dict()
    assert saved["state"][0]["step"].data_ptr() != saved["state"][1]["step"].data_ptr()
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = FastAdam(copies, lr=1e-2)
    saved["state"] = {i: {k: v.clone() for k, v in e.items()} for i, e in saved["state"].items()}
    resumed.load_state_dict(saved)  # as from a file: nothing shared with the live state
    grads = [torch.randn_like(p) for p in params]
    for opt, ps in ((fast, params), (resumed, copies), (slow, reference)):
        for p, g in zip(ps, grads, strict=True):
            p.grad = g.clone()
        opt.step()
    for p, q, r in zip(params, copies, reference, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
        torch.testing.assert_close(p, r, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hidden", [(32, 32), (24, 16, 8)])
def test_hand_written_backward_step_equals_the_autograd_step(hidden):
    spec = ObsSpec.vector(7)
    fast = SACAgent(spec, 3, SACConfig(**{**SMALL, "hidden": hidden}, seed=5))
    reference = SACAgent(spec, 3, SACConfig(**{**SMALL, "hidden": hidden}, seed=5))
    reference.fused = False
    assert fast.fused  # vector observations take the hand-written path by default
    for step in range(12):
        batch = vector_batch(spec, 3, 16, seed=step, terminated=np.arange(16) % 5 == 0)
        stats = step % 3 != 2  # the lean path (no statistics) takes the same step
        ours, theirs = fast.update(batch, stats), reference.update(batch, stats)
        assert bool(ours) == stats
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), (step, key)
    for net in ("actor", "critic", "critic_target"):
        for p, q in zip(
            getattr(fast, net).parameters(), getattr(reference, net).parameters(), strict=True
        ):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.log_alpha, reference.log_alpha)
    pixel_agent = SACAgent(ObsSpec.pixels((32, 32, 3), proprio_dim=4), 2, SACConfig(**SMALL))
    assert not pixel_agent.fused  # the conv encoder keeps autograd


@pytest.mark.skipif(not gemm.onednn_active(), reason="this torch has no oneDNN linear")
def test_onednn_products_give_the_autograd_step_at_the_papers_sizes():
    """At 2 x 256 and batch 256 the hand-written step runs its large products on oneDNN;
    the result is the autograd step's (torch's MKL products) up to fp32 rounding."""
    spec = ObsSpec.vector(17)
    config = SACConfig(hidden=(256, 256), batch_size=256, device="cpu", seed=3)
    fast, on_torch, reference = (SACAgent(spec, 6, config) for _ in range(3))
    reference.fused = False
    rounding_seen = False
    for step in range(6):
        batch = vector_batch(spec, 6, 256, seed=step, terminated=np.arange(256) % 7 == 0)
        ours = fast.update(batch)
        with gemm.torch_only():
            plain = on_torch.update(batch)
        theirs = reference.update(batch)
        rounding_seen |= ours != plain
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), (step, key)
    for net in ("actor", "critic", "critic_target"):
        for p, q in zip(getattr(fast, net).parameters(), getattr(reference, net).parameters(),
                        strict=True):  # fmt: skip
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # The two product libraries really ran: they round differently at this size.
    pairs = zip(fast.actor.parameters(), on_torch.actor.parameters(), strict=True)
    assert rounding_seen or any(not torch.equal(p, q) for p, q in pairs)


def test_critic_member_views_follow_replaced_parameters():
    """The step reads each member's weights through cached views; a critic whose
    parameters were replaced (not updated in place) must not be read through stale ones."""
    agent = SACAgent(ObsSpec.vector(5), 2, SACConfig(**SMALL))
    layer = agent.critic.layers[1]
    before = layer.members()
    assert layer.members() is before  # made once
    weight, transposed, bias = before[1]
    torch.testing.assert_close(weight, layer.weight[1].t(), rtol=0, atol=0)
    torch.testing.assert_close(transposed, layer.weight[1], rtol=0, atol=0)
    torch.testing.assert_close(bias, layer.bias[1, 0], rtol=0, atol=0)
    replaced = {k: torch.randn_like(v) for k, v in agent.critic.state_dict().items()}
    agent.critic.load_state_dict(replaced, assign=True)  # new tensors, new storage
    weight, _, bias = layer.members()[1]
    torch.testing.assert_close(weight, replaced["layers.1.weight"][1].t(), rtol=0, atol=0)
    torch.testing.assert_close(bias, replaced["layers.1.bias"][1, 0], rtol=0, atol=0)
    # In-place updates (Adam, load_state_dict without assign) keep the views valid.
    with torch.no_grad():
        layer.weight.add_(1.0)
    torch.testing.assert_close(layer.members()[1][0], layer.weight[1].t(), rtol=0, atol=0)
