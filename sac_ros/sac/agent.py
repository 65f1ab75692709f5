"""The SAC learner: networks, optimizers and one gradient step (Algorithm 1).

One gradient step = one critic update, one actor update, one temperature update, then a
Polyak update of the target critics (every step, ``torch._foreach_lerp_``). The order is
the paper's: the actor is trained against the freshly updated critics, and the temperature
and both losses use the alpha from before its own update.

Where the work goes: both critics (and their encoders) run as one batched ensemble; the
actor's backward pass computes no critic weight gradients (the critic runs with detached
parameters); gradients are set to None; no ``.item()`` inside the step (the
statistics are one stacked tensor, read once, and can be skipped).
Adam runs as one fused kernel per network, called directly (:mod:`sac_ros.sac.optim`).

All randomness of the agent flows through its own generators (``generator`` for torch,
``np_rng`` for numpy), so a checkpoint restores it exactly and the global RNGs are left
alone.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch

from sac_ros.sac import fused
from sac_ros.sac.batch import Batch, obs_to_tensor
from sac_ros.sac.checkpoint import (
    optimizer_from_flat,
    optimizer_to_flat,
    read_checkpoint,
    write_checkpoint,
)
from sac_ros.sac.config import SACConfig, resolve_device
from sac_ros.sac.networks import Actor, TwinCritic
from sac_ros.sac.optim import FastAdam
from sac_ros.sac.policy_format import encode_policy
from sac_ros.sac.spec import ObsSpec, RawObs
from sac_ros.sac.squash import squashed_sample

STAT_KEYS = ("critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean")


class SACAgent:
    """Soft Actor-Critic with twin critics, target critics and a learned temperature."""

    def __init__(self, spec: ObsSpec, action_dim: int, config: SACConfig | None = None) -> None:
        if not isinstance(spec, ObsSpec):
            raise ValueError(f"spec must be an ObsSpec, got {type(spec)}")
        if not isinstance(action_dim, int) or action_dim < 1:
            raise ValueError(f"action_dim must be a positive int, got {action_dim!r}")
        self.spec = spec
        self.action_dim = action_dim
        self.config = config = config if config is not None else SACConfig()
        self.device = resolve_device(config.device)
        # Weights depend on the seed only (built on the CPU, then moved), and building them
        # leaves the global torch RNG as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            actor = Actor(spec, action_dim, config.hidden)
            critic = TwinCritic(spec, action_dim, config.hidden)
        self.actor = actor.to(self.device)
        self.critic = critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(
            math.log(config.init_alpha), device=self.device, requires_grad=True
        )
        self.target_entropy = float(
            -action_dim if config.target_entropy is None else config.target_entropy
        )
        self.actor_optimizer = FastAdam(list(self.actor.parameters()), config.lr)
        self.critic_optimizer = FastAdam(list(self.critic.parameters()), config.lr)
        self.alpha_optimizer = FastAdam([self.log_alpha], config.lr)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.np_rng = np.random.default_rng(config.seed)
        self.num_updates = 0
        # Vector observations: the step with hand-written backward passes (sac_ros.sac.fused,
        # same arithmetic, tested equal); pixels: autograd through the conv encoder.
        self.fused = spec.image_shape is None
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    # ------------------------------------------------------------------ acting
    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def act(
        self, obs: RawObs, deterministic: bool = False, latent: np.ndarray | None = None
    ) -> np.ndarray:
        """Action(s) in [-1, 1] for one observation (A,) or a batch (B, A).

        ``latent``: the standard-normal sample to use (smoothed exploration); None draws
        from the agent's generator. Ignored when ``deterministic`` (the mean action).
        """
        batched, single = self.spec.prepare(obs)
        with torch.inference_mode():
            mean, log_std = self.actor(obs_to_tensor(batched, self.device))
            if deterministic:
                action = torch.tanh(mean)
            else:
                noise = self._latent(latent, mean.shape, single)
                action, _ = squashed_sample(mean, log_std, noise)
            out = action.cpu().numpy()
        return out[0] if single else out

    def random_action(self) -> np.ndarray:
        """A uniform action in [-1, 1]^A (warm-up exploration)."""
        return self.np_rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)

    def _latent(self, latent: np.ndarray | None, shape: torch.Size, single: bool) -> torch.Tensor:
        if latent is None:
            return self.standard_normal(shape)
        noise = np.asarray(latent, dtype=np.float32)
        if single and noise.shape == tuple(shape[1:]):
            noise = noise[None]
        if noise.shape != tuple(shape):
            raise ValueError(f"latent has shape {np.shape(latent)}, expected {tuple(shape)}")
        if not np.isfinite(noise).all():
            raise ValueError("latent contains NaN or infinite values")
        return torch.from_numpy(noise).to(self.device)

    def standard_normal(self, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    # ------------------------------------------------------------------ learning
    def update(self, batch: Batch, stats: bool = True) -> dict[str, float]:
        """One gradient step. Returns the statistics (STAT_KEYS), or {} if ``stats`` is
        False (avoids a device sync on CUDA)."""
        alpha = self.log_alpha.detach().exp()
        if self.fused:
            results = fused.update(self, batch, alpha, stats)
        else:
            critic_loss, q_mean = self.update_critic(batch, alpha)
            actor_loss, log_prob = self.update_actor(batch, alpha)
            results = [critic_loss, actor_loss, self.update_temperature(log_prob), log_prob, q_mean]
        self.update_target()
        self.num_updates += 1
        if not stats:
            return {}
        critic_loss, actor_loss, alpha_loss, log_prob, q_mean = results
        values = torch.stack(
            [critic_loss, actor_loss, alpha, alpha_loss, -log_prob.mean(), q_mean]
        ).tolist()
        return dict(zip(STAT_KEYS, values, strict=True))

    def compute_target(
        self, batch: Batch, alpha: torch.Tensor, latent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')),
        a' ~ pi(.|s'). Truncation (a time limit) still bootstraps."""
        with torch.no_grad():
            if self.fused:  # the same networks, without the module-call overhead
                mean, log_std = fused.actor_mean_log_std(self.actor, batch.next_obs)
            else:
                mean, log_std = self.actor(batch.next_obs)
            noise = self.standard_normal(mean.shape) if latent is None else latent
            next_action, next_log_prob = squashed_sample(mean, log_std, noise)
            if self.fused:
                x = torch.cat([batch.next_obs, next_action], dim=-1)
                next_q = fused.critic_forward(self.critic_target, x)[0].amin(0)
            else:
                next_q = self.critic_target(batch.next_obs, next_action).amin(0)
            soft_value = next_q - alpha * next_log_prob
            return batch.reward + self.config.gamma * (1.0 - batch.terminated) * soft_value

    def update_critic(
        self, batch: Batch, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on both critics; returns (loss, mean Q) detached."""
        if alpha is None:
            alpha = self.log_alpha.detach().exp()
        target = self.compute_target(batch, alpha)
        q = self.critic(batch.obs, batch.action)  # (2, B)
        loss = 0.5 * (q - target).square().mean(1).sum()
        self.critic_optimizer.zero_grad()
        loss.backward()
        self.critic_optimizer.step()
        return loss.detach(), q.detach().mean()

    def update_actor(
        self, batch: Batch, alpha: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on the actor: minimize E[alpha log pi(a|s) - min_i Q_i(s, a)].
        Returns (loss, log-probabilities) detached."""
        if alpha is None:
            alpha = self.log_alpha.detach().exp()
        mean, log_std = self.actor(batch.obs)
        action, log_prob = squashed_sample(mean, log_std, self.standard_normal(mean.shape))
        q = self.critic(batch.obs, action, detach_params=True).amin(0)
        loss = (alpha * log_prob - q).mean()
        self.actor_optimizer.zero_grad()
        loss.backward()
        self.actor_optimizer.step()
        return loss.detach(), log_prob.detach()

    def update_temperature(self, log_prob: torch.Tensor) -> torch.Tensor:
        """One Adam step on log alpha: minimize -log_alpha * (log pi + target_entropy)."""
        loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy).mean())
        self.alpha_optimizer.zero_grad()
        loss.backward()
        self.alpha_optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def update_target(self) -> None:
        torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)

    # ------------------------------------------------------------------ saving
    def policy_bytes(self, version: int) -> bytes:
        """The actor as safetensors bytes for :class:`sac_ros.sac.policy.Policy`."""
        return encode_policy(self.actor, self.config.hidden, version)

    def save_checkpoint(self, path: str | Path) -> None:
        """Everything needed to continue bit-identically, written atomically to ``path``."""
        write_checkpoint(Path(path), *self.snapshot())

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What :meth:`save_checkpoint` writes, held in memory: (tensors, JSON-safe state).
        The tensors are copies, so later updates do not change a snapshot."""
        tensors: dict[str, torch.Tensor] = {"log_alpha": self.log_alpha.detach()}
        for prefix, module in self._modules().items():
            tensors.update({f"{prefix}/{k}": v for k, v in module.state_dict().items()})
        optimizers = {}
        for prefix, optimizer in self._optimizers().items():
            flat, meta = optimizer_to_flat(optimizer, f"optim.{prefix}")
            tensors.update(flat)
            optimizers[prefix] = meta
        tensors["rng.torch"] = self.generator.get_state()
        state = {
            "config": self.config.to_json(),
            "spec": self.spec.to_json(),
            "action_dim": self.action_dim,
            "num_updates": self.num_updates,
            "optimizers": optimizers,
            "np_rng": copy.deepcopy(self.np_rng.bit_generator.state),
            "torch_rng_device": self.device.type,
        }
        return {k: v.detach().clone() for k, v in tensors.items()}, state

    def is_finite(self) -> bool:
        """Whether every weight (target critics included) and the temperature are finite:
        false once a diverged update has written NaN or inf into them."""
        params = [self.log_alpha, *self._critic_params, *self._target_params]
        params += list(self.actor.parameters())
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())

    @classmethod
    def load_checkpoint(cls, path: str | Path, device: str = "auto") -> SACAgent:
        tensors, state = read_checkpoint(Path(path))
        return cls.from_snapshot(tensors, state, device, source=str(path))

    @classmethod
    def from_snapshot(
        cls,
        tensors: dict[str, torch.Tensor],
        state: dict,
        device: str = "auto",
        source: str = "snapshot",
    ) -> SACAgent:
        """An agent rebuilt from :meth:`snapshot` (or a checkpoint's contents)."""
        try:
            config = SACConfig.from_json(state["config"])
            config = SACConfig(**{**config.__dict__, "device": device})
            agent = cls(ObsSpec.from_json(state["spec"]), int(state["action_dim"]), config)
            for prefix, module in agent._modules().items():
                module.load_state_dict(_with_prefix(tensors, prefix))
            with torch.no_grad():
                agent.log_alpha.copy_(tensors["log_alpha"])
            for prefix, optimizer in agent._optimizers().items():
                meta = state["optimizers"][prefix]
                optimizer_from_flat(optimizer, tensors, meta, f"optim.{prefix}")
            if state["torch_rng_device"] == agent.device.type:
                agent.generator.set_state(tensors["rng.torch"])
            else:  # CPU and CUDA generators differ: a fresh, still deterministic stream
                agent.generator.manual_seed(config.seed + int(state["num_updates"]))
            agent.np_rng.bit_generator.state = state["np_rng"]
            agent.num_updates = int(state["num_updates"])
        except (KeyError, RuntimeError, TypeError) as err:
            raise ValueError(f"{source}: checkpoint does not fit: {err!r}") from err
        return agent

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def _optimizers(self) -> dict[str, FastAdam]:
        return {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
            "alpha": self.alpha_optimizer,
        }


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    start = prefix + "/"
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}
