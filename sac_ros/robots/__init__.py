"""Per-robot facts (joint names, order, limits, unit conversions, kinematics). No ROS."""

from sac_ros.robots.limits import JointLimits

__all__ = ["JointLimits"]
