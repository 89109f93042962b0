"""Runs one launch file under the real `launch` LaunchService, as `ros2 launch` does:
    python run_launch.py FILE [name:=value ...]
Stops on SIGINT/SIGTERM (the test's teardown)."""

import signal
import sys

from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from launch import LaunchDescription, LaunchService

path, args = sys.argv[1], [a.split(":=", 1) for a in sys.argv[2:]]
ls = LaunchService(noninteractive=True)
ls.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path), launch_arguments=[(k, v) for k, v in args])]))
signal.signal(signal.SIGTERM, lambda *_: ls.shutdown())
sys.exit(ls.run())
