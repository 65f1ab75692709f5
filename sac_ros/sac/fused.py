"""One SAC gradient step for vector observations, with the backward passes written out.

The same step as :meth:`sac_ros.sac.agent.SACAgent.update_critic`, ``update_actor`` and
``update_temperature`` (the paper's Algorithm 1, same order, same random draws), but
without autograd: on a 2-core CPU at the paper's sizes (2 x 256, batch 256) more than half
of an autograd step is not matrix products but graph bookkeeping, small ops and copies.
Here each layer's backward is the two products it needs (weights and input), a bias sum
and a ReLU mask, written into ``.grad`` for the same fused Adam. Pixel observations (the
convolutional encoder) keep the autograd path. A test checks that both paths produce the
same parameters, step after step.

Products go through :func:`sac_ros.sac.gemm.linear` (oneDNN where it is faster than
torch's MKL GEMM, see there). The twin critics stay one ensemble module with stacked
parameters; their activations are carried as one tensor per member, because each
member's product is one oneDNN GEMM (torch's batched GEMM would take MKL's slower path).

Shapes: critic layers are ensembles, weight (M, in, out), bias (M, 1, out), activations a
list of M tensors (B, features); actor layers are ``nn.Linear``, weight (out, in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sac_ros.sac import gemm
from sac_ros.sac.networks import LOG_STD_MAX, LOG_STD_MIN, Actor, TwinCritic
from sac_ros.sac.squash import squashed_sample

if TYPE_CHECKING:
    from sac_ros.sac.agent import SACAgent
    from sac_ros.sac.batch import Batch

_relu_backward = torch.ops.aten.threshold_backward
Members = list[torch.Tensor]  # one (B, features) tensor per ensemble member


def critic_forward(critic: TwinCritic, x: torch.Tensor) -> tuple[torch.Tensor, list[Members]]:
    """Q values (M, B) of the input rows ``x`` (B, obs + action), and each layer's input."""
    h: Members = [x] * critic.members
    inputs = []
    last = len(critic.layers) - 1
    for i, layer in enumerate(critic.layers):
        inputs.append(h)
        h = [
            gemm.linear(h_m, w_m, b_m, relu=i < last)
            for h_m, (w_m, _, b_m) in zip(h, layer.members(), strict=True)
        ]
    return torch.cat(h, dim=1).t(), inputs


def critic_backward(
    critic: TwinCritic, inputs: list[Members], dq: torch.Tensor, weights: bool
) -> torch.Tensor | None:
    """Back from dLoss/dQ (M, B): the weight gradients into ``.grad`` (if ``weights``),
    else the gradient with respect to the input rows, summed over members (B, in)."""
    g: Members = list(dq.unsqueeze(-1))
    for i in range(len(critic.layers) - 1, -1, -1):
        layer = critic.layers[i]
        if weights:
            layer.weight.grad = torch.stack(
                [gemm.weight_grad(x_m, g_m) for x_m, g_m in zip(inputs[i], g, strict=True)]
            )  # per member x.T @ g (in, out), the stored layout
            layer.bias.grad = torch.stack([g_m.sum(0, keepdim=True) for g_m in g])
            if i == 0:
                return None  # the input rows are data: no gradient needed
        g = [gemm.linear(g_m, w_t) for g_m, (_, w_t, _) in zip(g, layer.members(), strict=True)]
        if i > 0:  # inputs[i] is the previous ReLU's output
            g = [_relu_backward(g_m, x_m, 0) for g_m, x_m in zip(g, inputs[i], strict=True)]
    return torch.stack(g).sum(0)


def actor_forward(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The head's output (B, 2A): mean and unclamped log std; and each layer's input."""
    inputs = []
    h = obs
    for layer in actor.layers:
        inputs.append(h)
        h = gemm.linear(h, layer.weight, layer.bias, relu=True)
    inputs.append(h)
    return gemm.linear(h, actor.head.weight, actor.head.bias), inputs


def actor_mean_log_std(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``actor(obs)`` returns: the mean and the clamped log std."""
    out, _ = actor_forward(actor, obs)
    mean, log_std = out.chunk(2, dim=-1)
    return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


def actor_backward(actor: Actor, inputs: list[torch.Tensor], dout: torch.Tensor) -> None:
    layers = [*actor.layers, actor.head]
    g = dout
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        layer.weight.grad = gemm.weight_grad(g, inputs[i])
        layer.bias.grad = g.sum(0)
        if i > 0:
            g = _relu_backward(gemm.linear(g, layer.weight.t()), inputs[i], 0)


@torch.no_grad()
def update(
    agent: SACAgent, batch: Batch, alpha: torch.Tensor, stats: bool = True
) -> list[torch.Tensor]:
    """Critic, actor and temperature steps. Returns critic loss, actor loss, alpha loss,
    log-probabilities (B,) and mean Q; without ``stats`` only the log-probabilities (the
    losses themselves are never needed here, only their gradients)."""
    obs, size, dim = batch.obs, len(batch), agent.action_dim
    assert isinstance(obs, torch.Tensor)

    # Critic: minimize 0.5 * sum_i E[(Q_i(s, a) - y)^2].
    target = agent.compute_target(batch, alpha)
    q, inputs = critic_forward(agent.critic, torch.cat([obs, batch.action], dim=-1))
    error = q - target
    critic_backward(agent.critic, inputs, error / size, weights=True)
    agent.critic_optimizer.step()

    # Actor: minimize E[alpha * log pi(a|s) - min_i Q_i(s, a)], a = tanh(mean + std * x),
    # against the critics just updated.
    out, actor_inputs = actor_forward(agent.actor, obs)
    mean, raw_log_std = out[:, :dim], out[:, dim:]
    log_std = raw_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
    latent = agent.standard_normal(mean.shape)
    action, log_prob = squashed_sample(mean, log_std, latent)
    q_pi, q_inputs = critic_forward(agent.critic, torch.cat([obs, action], dim=-1))
    q_min, member = q_pi.min(0)
    # dLoss/dQ: -1/B on the smaller twin of each sample; back through the critic to a.
    dq = torch.zeros_like(q_pi).scatter_(0, member.unsqueeze(0), -1.0 / size)
    d_action = critic_backward(agent.critic, q_inputs, dq, weights=False)[:, -dim:]
    # With u = mean + std * x: d log pi / du = 2 tanh(u) (the Jacobian term), da/du = 1 - a^2,
    # du/dmean = 1, du/dlog_std = std * x, and d log pi / dlog_std = -1 directly.
    weight = alpha / size
    d_u = torch.addcmul(d_action, d_action, action.square(), value=-1.0)  # * (1 - a^2)
    d_u.addcmul_(action, 2.0 * weight)
    d_log_std = torch.mul(d_u, log_std.exp()).mul_(latent).sub_(weight)
    d_log_std.mul_(raw_log_std == log_std)  # the clamp passes gradient inside its bounds
    actor_backward(agent.actor, actor_inputs, torch.cat([d_u, d_log_std], dim=-1))
    agent.actor_optimizer.step()

    # Temperature: minimize -log_alpha * (log pi + target entropy).
    drive = log_prob.mean() + agent.target_entropy
    agent.log_alpha.grad = -drive
    alpha_loss = -(agent.log_alpha * drive) if stats else drive  # before the alpha step
    agent.alpha_optimizer.step()
    if not stats:
        return [log_prob]
    critic_loss = 0.5 * error.square().mean(1).sum()
    actor_loss = (alpha * log_prob - q_min).mean()
    return [critic_loss, actor_loss, alpha_loss, log_prob, q.mean()]
