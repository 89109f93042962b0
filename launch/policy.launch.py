"""HMA as a policy. With sim_robot:=true a simulated robot stands at rest (no built-in
controller, no command stream) until the policy drives it, closing the loop. Enable the policy:
ros2 param set /hma_policy enabled true (refused for an embodiment without action limits unless
allow_unlimited:=true). While disabled, chunks go only to preview/joint_trajectory.

    ros2 launch hma_ros policy.launch.py sim_robot:=true enabled:=true
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
        DeclareLaunchArgument("use_compressed", default_value="false"),
        DeclareLaunchArgument("enabled", default_value="false"),
        DeclareLaunchArgument("allow_unlimited", default_value="false"),
        DeclareLaunchArgument("sim_robot", default_value="false"),
        DeclareLaunchArgument("rviz", default_value="false"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="policy_node",
            name="hma_policy",
            output="screen",
            parameters=[
                os.path.join(share, "config", "policy.yaml"),
                {"embodiment": LaunchConfiguration("embodiment"),
                 "checkpoint": LaunchConfiguration("checkpoint"),
                 "device": LaunchConfiguration("device"), "graphs": LaunchConfiguration("graphs"),
                 "compile": LaunchConfiguration("compile"), "precision": LaunchConfiguration("precision"),
                 "use_compressed": LaunchConfiguration("use_compressed"),
                 "enabled": LaunchConfiguration("enabled"),
                 "allow_unlimited": LaunchConfiguration("allow_unlimited")},
            ],
            remappings=[("image_raw", LaunchConfiguration("camera_topic"))],
        ),
        Node(
            package="hma_ros",
            executable="sim_robot_node",
            name="sim_robot",
            output="screen",
            parameters=[os.path.join(share, "config", "sim_robot.yaml"),
                        {"embodiment": LaunchConfiguration("embodiment"),
                         "policy": "hold"}],  # at rest until the policy commands it
            condition=IfCondition(LaunchConfiguration("sim_robot")),
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "rviz", "imagine.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
