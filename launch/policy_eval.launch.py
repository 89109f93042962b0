"""A policy node evaluated in the learned simulator: simulate_node (HMA, episodes of
episode_steps from a dataset's initial frames, the next episode at each reset), a policy node
that reads sim/image and writes sim/action (frame_policy_node: the graded PushT controllers of
`hma policy-eval --rank`, read through the judge), and policy_eval_node, which runs `episodes`
episodes, scores the imagined frames with the judge, writes `out` (JSON) and ends the launch.

    ros2 launch hma_ros policy_eval.launch.py dataset:=data/test/pusht episodes:=50 kind:=pose out:=pose.json

To evaluate your own policy node, start it beside this launch with policy:=false, reading
sim/image and writing sim/action (one chunk of stride x action_dim values per frame).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("hma_ros")
    cfg = os.path.join(share, "config", "policy_eval.yaml")
    arg = LaunchConfiguration
    evaluator = Node(
        package="hma_ros",
        executable="policy_eval_node",
        name="hma_policy_eval",
        output="screen",
        parameters=[cfg, {"episodes": arg("episodes"), "episode_steps": arg("episode_steps"), "out": arg("out"),
                          "judge": arg("judge"), "policy_name": arg("policy_name")}],
    )
    return LaunchDescription([
        DeclareLaunchArgument("checkpoint", default_value="hma_discrete_moves"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda: where the model runs"),
        DeclareLaunchArgument("graphs", default_value="false", description="true on cuda: CUDA graphs (same frames, faster)"),
        DeclareLaunchArgument("compile", default_value="false",
                              description="true with graphs: torch.compile'd blocks, compiled at configure (~1 min); "
                                          "pays on cuda, and on a CPU with bf16 units with precision:=bf16"),
        DeclareLaunchArgument("precision", default_value="fp32",
                              description="fp32 | bf16 | fp16: the model calls' precision (bf16 pays on cuda and on "
                                          "CPUs with bf16 units, e.g. AVX512_BF16)"),
        DeclareLaunchArgument("judge", default_value="pusht_judge"),
        DeclareLaunchArgument("dataset", description="initial frames: a PushT dataset (hma gen-data), e.g. data/test/pusht"),
        DeclareLaunchArgument("episodes", default_value="50"),
        DeclareLaunchArgument("episode_steps", default_value="20"),
        DeclareLaunchArgument("kind", default_value="pose"),
        DeclareLaunchArgument("noise", default_value="0.0"),
        DeclareLaunchArgument("policy", default_value="true", description="false: bring your own policy node"),
        DeclareLaunchArgument("policy_name", default_value="policy"),
        DeclareLaunchArgument("out", default_value="policy_eval.json"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_shm.xml")),
        Node(
            package="hma_ros",
            executable="simulate_node",
            name="hma_simulate",
            output="screen",
            parameters=[os.path.join(share, "config", "simulate.yaml"),
                        {"checkpoint": arg("checkpoint"), "dataset": arg("dataset"), "embodiment": "pusht",
                         "device": arg("device"), "graphs": arg("graphs"), "compile": arg("compile"), "precision": arg("precision"),
                         "episode_steps": arg("episode_steps"), "next_episode_on_reset": True}],
        ),
        Node(
            package="hma_ros",
            executable="frame_policy_node",
            name="hma_frame_policy",
            output="screen",
            parameters=[cfg, {"kind": arg("kind"), "noise": arg("noise"), "judge": arg("judge")}],
            remappings=[("image", "sim/image"), ("action", "sim/action")],
            condition=IfCondition(arg("policy")),
        ),
        evaluator,
        RegisterEventHandler(OnProcessExit(target_action=evaluator, on_exit=[EmitEvent(event=Shutdown())])),
    ])
