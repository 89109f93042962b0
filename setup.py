"""ament_python build for hma_ros: works under `colcon build` and under plain `pip install`."""

import os

from setuptools import find_packages, setup

PACKAGE = "hma_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def share_tree(folder):
    """(install dir, [files]) pairs that mirror `folder` under share/hma_ros/."""
    pairs = []
    for root, _dirs, files in os.walk(os.path.join(HERE, folder)):
        files = [f for f in files if not f.startswith(".") and not f.endswith(".pyc")]
        if not files:
            continue
        rel = os.path.relpath(root, HERE)
        pairs.append((os.path.join("share", PACKAGE, rel), [os.path.join(rel, f) for f in files]))
    return pairs


data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
    ("share/" + PACKAGE, ["package.xml"]),
]
for folder in ("launch", "config", "rviz", "models"):
    data_files += share_tree(folder)

NODES = {
    "sim_robot_node": "hma_ros.nodes.sim_robot_node:main",
    "recorder_node": "hma_ros.nodes.recorder_node:main",
    "imagine_node": "hma_ros.nodes.imagine_node:main",
    "policy_node": "hma_ros.nodes.policy_node:main",
    "simulate_node": "hma_ros.nodes.simulate_node:main",
    "frame_policy_node": "hma_ros.nodes.frame_policy_node:main",
    "policy_eval_node": "hma_ros.nodes.policy_eval_node:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=data_files,
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="hma_ros maintainers",
    maintainer_email="maintainers@hma-ros.invalid",
    description="ROS 2 node suite for HMA world models, and the `hma` offline tool.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": ["hma = hma_ros.cli.main:main"]
        + [f"{name} = {target}" for name, target in NODES.items()],
    },
)
