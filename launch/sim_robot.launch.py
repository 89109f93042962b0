"""Simulated robot only: camera + joint states from a real simulator (PushT by default).

    ros2 launch hma_ros sim_robot.launch.py embodiment:=reacher rviz:=true
    ros2 launch hma_ros sim_robot.launch.py policy:=random plan_seconds:=5.0   # publishes its plan
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
        DeclareLaunchArgument("embodiment", default_value="pusht",
                              description="pusht | reacher | cheetah | manipulator"),
        DeclareLaunchArgument("camera_hz", default_value="10.0"),
        DeclareLaunchArgument("policy", default_value="expert",
                              description="built-in controller: expert | noisy | random | hold"),
        DeclareLaunchArgument("plan_seconds", default_value="0.0",
                              description="with policy:=random, publish its commands this far ahead "
                                          "(planned_commands) for imagine_node"),
        DeclareLaunchArgument("rviz", default_value="false"),
        # large raw images need the shared-memory transport profile (see README)
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="sim_robot_node",
            name="sim_robot",
            output="screen",
            parameters=[
                os.path.join(share, "config", "sim_robot.yaml"),
                {"embodiment": LaunchConfiguration("embodiment"),
                 "camera_hz": LaunchConfiguration("camera_hz"),
                 "policy": LaunchConfiguration("policy"),
                 "plan_seconds": LaunchConfiguration("plan_seconds")},
            ],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "rviz", "sim_robot.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
