"""The package installs itself like an ament_python package and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_hma_ros_pulls_in_neither_rclpy_nor_torch():
    code = "import sys, hma_ros, hma_ros.paths; print(sorted(m for m in ('rclpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_xml_is_format_3_ament_python_with_the_runtime_dependencies():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "hma_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "trajectory_msgs", "geometry_msgs",
                "diagnostic_msgs", "std_srvs", "launch_ros", "message_filters", "cv_bridge",
                "python3-numpy", "python3-opencv", "python3-yaml"):
        assert dep in deps, dep
    assert "python3-pytest" in {e.text for e in root.findall("test_depend")}


def test_pip_install_into_a_prefix_gives_the_colcon_share_layout(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed",
         "--prefix", str(prefix), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    share = prefix / "share"
    assert (share / "ament_index/resource_index/packages/hma_ros").is_file()
    for item in ("package.xml", "launch", "config", "rviz", "models"):
        assert (share / "hma_ros" / item).exists(), item
    assert (share / "hma_ros/config/fastdds_shm.xml").is_file()
    # the checkpoint every node and launch file defaults to is installed where a bare name finds it
    from hma_ros.nodes.pipeline import DEFAULT_CHECKPOINT

    assert (share / "hma_ros/models" / DEFAULT_CHECKPOINT / "model.safetensors").is_file()
    for launch in ("imagine", "simulate", "policy"):
        assert f'default_value="{DEFAULT_CHECKPOINT}"' in (share / f"hma_ros/launch/{launch}.launch.py").read_text()
    # console scripts: the offline tool and the node executables
    bins = {p.name for p in (prefix / "bin").iterdir()} if (prefix / "bin").exists() else set()
    libs = {p.name for p in (prefix / "lib/hma_ros").iterdir()} if (prefix / "lib/hma_ros").exists() else set()
    assert {"hma", "sim_robot_node"} <= (bins | libs)


def test_share_dir_falls_back_to_the_source_tree_for_editable_installs():
    from hma_ros import paths

    share = paths.share_dir()
    assert (share / "config" / "fastdds_shm.xml").is_file()
    assert (share / "package.xml").is_file()


def test_hma_command_runs_and_reports_its_version():
    out = subprocess.run([sys.executable, "-m", "hma_ros.cli.main", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("hma_ros ")
