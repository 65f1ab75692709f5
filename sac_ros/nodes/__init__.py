"""Thin ROS 2 nodes: topics, parameters and QoS wired to the cores. No algorithm here."""
