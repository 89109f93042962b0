"""Imagine the next seconds live: camera + joint states in, imagined frames out (RViz).

    ros2 launch hma_ros imagine.launch.py embodiment:=pusht camera_topic:=/camera/image_raw rviz:=true
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
        DeclareLaunchArgument("checkpoint", default_value="hma_discrete_moves"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda: where the model runs"),
        DeclareLaunchArgument("graphs", default_value="false", description="true on cuda: CUDA graphs (same frames, faster)"),
        DeclareLaunchArgument("compile", default_value="false",
                              description="true with graphs: torch.compile'd blocks, compiled at configure (~1 min); "
                                          "pays on cuda, and on a CPU with bf16 units with precision:=bf16"),
        DeclareLaunchArgument("precision", default_value="fp32",
                              description="fp32 | bf16 | fp16: the model calls' precision (bf16 pays on cuda and on "
                                          "CPUs with bf16 units, e.g. AVX512_BF16)"),
        DeclareLaunchArgument("camera_topic", default_value="image_raw"),
        DeclareLaunchArgument("joint_states_topic", default_value="joint_states"),
        DeclareLaunchArgument("use_compressed", default_value="false"),
        DeclareLaunchArgument("rviz", default_value="false"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="imagine_node",
            name="hma_imagine",
            output="screen",
            parameters=[
                os.path.join(share, "config", "imagine.yaml"),
                {"embodiment": LaunchConfiguration("embodiment"),
                 "checkpoint": LaunchConfiguration("checkpoint"),
                 "device": LaunchConfiguration("device"), "graphs": LaunchConfiguration("graphs"),
                 "compile": LaunchConfiguration("compile"), "precision": LaunchConfiguration("precision"),
                 "use_compressed": LaunchConfiguration("use_compressed")},
            ],
            remappings=[
                ("image_raw", LaunchConfiguration("camera_topic")),
                ("joint_states", LaunchConfiguration("joint_states_topic")),
            ],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "rviz", "imagine.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
