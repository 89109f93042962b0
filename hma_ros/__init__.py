"""hma_ros: HMA world models on ROS 2 robots.

Importing this package is cheap: it imports neither rclpy nor torch. The layers are
`model/` (pure torch), `data/` (chunker, datasets, bags, simulators), `runtime/` (WorldModel),
`cli/` (the `hma` command) and `nodes/` (the only layer that imports rclpy).
"""

__version__ = "0.1.0"
