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

Shapes: critic layers are ensembles, weight (M, in, out), bias (M, 1, out), activations
one (B, features) tensor per member and layer; actor layers are ``nn.Linear``, weight
(out, in).
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

_relu_backward_out = torch.ops.aten.threshold_backward.grad_input


def _relu_backward_(g: torch.Tensor, relu_output: torch.Tensor) -> torch.Tensor:
    """Zero ``g`` where the ReLU output was zero, in place (g is a fresh product's output:
    no new 256 KB buffer per layer)."""
    return _relu_backward_out(g, relu_output, 0, grad_input=g)


def critic_forward(
    critic: TwinCritic, x: torch.Tensor
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """Q values (M, B) of the input rows ``x`` (B, obs + action), and each member's layer
    inputs (one member at a time through all its layers)."""
    views = [layer.members() for layer in critic.layers]
    last = len(views) - 1
    q, inputs = [], []
    for member in range(critic.members):
        h, member_inputs = x, []
        for i, layer_views in enumerate(views):
            weight, _, bias = layer_views[member]
            member_inputs.append(h)
            h = gemm.linear(h, weight, bias, relu=i < last)
        q.append(h)
        inputs.append(member_inputs)
    return torch.cat(q, dim=1).t(), inputs


def critic_backward(
    critic: TwinCritic, inputs: list[list[torch.Tensor]], dq: torch.Tensor, weights: bool
) -> torch.Tensor | None:
    """Back from dLoss/dQ (M, B), one member at a time: the weight gradients into
    ``.grad`` (if ``weights``), else the gradient with respect to the input rows, summed
    over members (B, in)."""
    views = [layer.members() for layer in critic.layers]
    weight_grads: list[list[torch.Tensor]] = [[] for _ in views]
    bias_grads: list[list[torch.Tensor]] = [[] for _ in views]
    input_grad = None
    for member, (member_inputs, dq_member) in enumerate(zip(inputs, dq, strict=True)):
        g = dq_member.unsqueeze(-1)
        for i in range(len(views) - 1, -1, -1):
            if weights:  # x.T @ g (in, out), the stored layout
                weight_grads[i].append(gemm.weight_grad(member_inputs[i], g))
                bias_grads[i].append(g.sum(0, keepdim=True))
                if i == 0:
                    break  # the input rows are data: no gradient needed
            g = gemm.linear(g, views[i][member][1])
            if i > 0:  # member_inputs[i] is the previous ReLU's output
                g = _relu_backward_(g, member_inputs[i])
        if not weights:
            input_grad = g if input_grad is None else input_grad + g
    if weights:
        for layer, w_grads, b_grads in zip(critic.layers, weight_grads, bias_grads, strict=True):
            layer.weight.grad = torch.stack(w_grads)
            layer.bias.grad = torch.stack(b_grads)
    return input_grad


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
            g = _relu_backward_(gemm.linear(g, layer.weight.t()), inputs[i])


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
