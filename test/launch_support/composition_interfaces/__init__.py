"""Minimal stand-in for the ROS message package `composition_interfaces` (not on PyPI).

`launch_ros.actions` imports `composition_interfaces.srv` at module level for composable nodes,
which hma_ros does not use. Only the launch-file tests put this folder on sys.path, and only
when the real package is missing; on a robot the ROS distro provides the real one."""
