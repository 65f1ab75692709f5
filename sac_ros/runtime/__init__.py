"""Robot-side and learner-side logic shared by the ROS nodes, without rclpy.

The nodes in sac_ros/nodes only wire topics and parameters to these classes, so the
behaviour (what is sent, what is rejected, what is retained) is tested without DDS.
"""
