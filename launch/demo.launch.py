"""The whole graph on one machine with no robot: the simulated PushT robot publishes camera and
joint states, the imagine node imagines, RViz (optional) shows both.

    ros2 launch hma_ros demo.launch.py rviz:=true
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("hma_ros")
    return LaunchDescription([
        DeclareLaunchArgument("embodiment", default_value="pusht"),
        DeclareLaunchArgument("checkpoint", default_value="hma_discrete_small"),
        DeclareLaunchArgument("rviz", default_value="false"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="sim_robot_node",
            name="sim_robot",
            output="screen",
            parameters=[os.path.join(share, "config", "sim_robot.yaml"),
                        {"embodiment": LaunchConfiguration("embodiment")}],
        ),
        Node(
            package="hma_ros",
            executable="imagine_node",
            name="hma_imagine",
            output="screen",
            parameters=[os.path.join(share, "config", "imagine.yaml"),
                        {"embodiment": LaunchConfiguration("embodiment"),
                         "checkpoint": LaunchConfiguration("checkpoint")}],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "rviz", "imagine.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
