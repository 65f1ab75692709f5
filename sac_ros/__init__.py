"""sac_ros: Soft Actor-Critic on real robots with ROS 2."""

__version__ = "0.1.0"
