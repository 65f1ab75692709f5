"""Soft Actor-Critic core (no ROS): networks, agent update, replay, noise, policy files.

Public API::

    from sac_ros.sac import (ObsSpec, SACConfig, SACAgent, ReplayBuffer, SmoothedNoise,
                             Policy, PolicyFormatError, Batch, train, evaluate)
"""

from sac_ros.sac.agent import STAT_KEYS, SACAgent
from sac_ros.sac.batch import Batch
from sac_ros.sac.config import SACConfig, resolve_device
from sac_ros.sac.noise import SmoothedNoise
from sac_ros.sac.policy import Policy
from sac_ros.sac.policy_format import PolicyFormatError
from sac_ros.sac.replay import ReplayBuffer
from sac_ros.sac.spec import ObsSpec
from sac_ros.sac.trainer import evaluate, train

__all__ = [
    "STAT_KEYS",
    "Batch",
    "ObsSpec",
    "Policy",
    "PolicyFormatError",
    "ReplayBuffer",
    "SACAgent",
    "SACConfig",
    "SmoothedNoise",
    "evaluate",
    "resolve_device",
    "train",
]
