"""The whole graph against a simulated robot, on one machine: the simulated robot publishes
camera + joint states, the imagine node imagines, RViz (optional) shows both. It is the two
launch files a robot user runs, included, not a copy of them. The checkpoint defaults to
hma_discrete_moves, the shipped model that draws the PushT agent where the commands take it; the
simulated robot's controller publishes its commands 5 s ahead (planned_commands), so the node
imagines the commands that will really be sent, as `make demo` does.

    ros2 launch hma_ros demo.launch.py rviz:=true
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription


def generate_launch_description():
    launch_dir = os.path.join(get_package_share_directory("hma_ros"), "launch")
    return LaunchDescription([
        DeclareLaunchArgument("embodiment", default_value="pusht"),
        DeclareLaunchArgument("checkpoint", default_value="hma_discrete_moves"),
        DeclareLaunchArgument("rviz", default_value="false"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(launch_dir, "sim_robot.launch.py")),
            launch_arguments=[("embodiment", LaunchConfiguration("embodiment")), ("rviz", "false"),
                              ("policy", "random"), ("plan_seconds", "5.0")]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(launch_dir, "imagine.launch.py")),
            launch_arguments=[("embodiment", LaunchConfiguration("embodiment")),
                              ("checkpoint", LaunchConfiguration("checkpoint")),
                              ("rviz", LaunchConfiguration("rviz"))]),
    ])
