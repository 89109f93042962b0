"""HMA as a learned simulator: actions on sim/action, imagined frames on sim/image.

    ros2 launch hma_ros simulate.launch.py initial_image:=/path/start.png
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
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
        DeclareLaunchArgument("initial_image", default_value=""),
        DeclareLaunchArgument("dataset", default_value=""),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="simulate_node",
            name="hma_simulate",
            output="screen",
            parameters=[
                os.path.join(share, "config", "simulate.yaml"),
                {"embodiment": LaunchConfiguration("embodiment"),
                 "checkpoint": LaunchConfiguration("checkpoint"),
                 "device": LaunchConfiguration("device"), "graphs": LaunchConfiguration("graphs"),
                 "compile": LaunchConfiguration("compile"), "precision": LaunchConfiguration("precision"),
                 "initial_image": LaunchConfiguration("initial_image"),
                 "dataset": LaunchConfiguration("dataset")},
            ],
        ),
    ])
