"""Tasks as pure numpy functions: observation layout, reward, termination, resets.

Shared by the gymnasium environments (sac_ros.sim) and the ROS reward node; no ROS,
no MuJoCo.
"""
