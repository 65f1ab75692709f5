"""Device access without ROS: Dynamixel bus and emulator, D'Claw driver core, Minitaur
safety core, camera capture. Import the submodules directly (cv2 and dynamixel_sdk load
only where they are used)."""
