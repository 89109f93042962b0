"""docs/your_robot.md, walked as a user walks it (tiny budgets): the doc's own embodiment YAML,
a recorded rosbag2 of a robot the shipped model never saw, bag2data, the two-stage finetune on
the shipped trunk, eval, and the imagine node on the finetuned checkpoint over real DDS."""

from __future__ import annotations

import re

import pytest
from sensor_msgs.msg import Image

from hma_ros.cli.main import main as hma
from hma_ros.data.dataset import Dataset
from hma_ros.data.embodiment import load_embodiment
from hma_ros.model.checkpoint import load_checkpoint

from ros_harness import REPO

DOC = REPO / "docs/your_robot.md"


def doc_yaml() -> str:
    """The indented YAML block of step 2 of the doc, as written there."""
    text = DOC.read_text()
    block = re.search(r"\n((?:    name: my_arm.*\n)(?:    .*\n)+)", text)
    assert block, "docs/your_robot.md lost its embodiment YAML"
    return "\n".join(line[4:] for line in block.group(1).splitlines()) + "\n"


def test_the_docs_commands_are_the_ones_this_test_runs():
    text = DOC.read_text()
    for cmd in ("hma bag2data rec/bags/manipulator --embodiment my_arm.yaml --out data/my_arm",
                "hma train --data data/my_arm --init models/hma_discrete_small --freeze-trunk",
                "hma train --data data/my_arm --init runs/my_arm_frozen",
                "hma eval --ckpt runs/my_arm --data data/my_arm --embodiments my_arm",
                "ros2 launch hma_ros imagine.launch.py embodiment:=$PWD/my_arm.yaml"):
        assert cmd in text, cmd


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    d = tmp_path_factory.mktemp("your_robot")
    (d / "my_arm.yaml").write_text(doc_yaml())
    emb = load_embodiment(d / "my_arm.yaml")
    assert (emb.name, emb.action_dim, emb.action_hz, emb.at_rest) == ("my_arm", 5, 50, "zero")
    # 1. record (gen-data --bag stands in for ros2 bag record, as the doc says)
    assert hma(["gen-data", "--out", str(d / "rec"), "--embodiments", "manipulator", "--episodes", "2",
                "--seconds", "7", "--seed", "500", "--bag", "--workers", "1"]) == 0
    # 3. convert with the doc's YAML
    assert hma(["bag2data", str(d / "rec/bags/manipulator"), "--embodiment", str(d / "my_arm.yaml"),
                "--out", str(d / "data/my_arm")]) == 0
    # 4. the two-stage finetune on the shipped trunk (tiny budgets)
    tiny = ["--batch-size", "2", "--warmup", "1", "--eval-every", "0", "--threads", "1"]
    assert hma(["train", "--data", str(d / "data/my_arm"), "--init", str(REPO / "models/hma_discrete_small"),
                "--freeze-trunk", "--out", str(d / "runs/my_arm_frozen"), "--steps", "2", "--lr", "1e-3", *tiny]) == 0
    assert hma(["train", "--data", str(d / "data/my_arm"), "--init", str(d / "runs/my_arm_frozen"),
                "--out", str(d / "runs/my_arm"), "--steps", "2", "--lr", "3e-4", *tiny]) == 0
    return d


def test_a_new_robots_bag_becomes_a_finetuned_checkpoint_with_its_own_stem(walked):
    ds = Dataset(walked / "data/my_arm")
    assert ds.name == "my_arm" and ds.meta["stride"] == 25 and len(ds.episodes) == 2
    cfg, state = load_checkpoint(walked / "runs/my_arm")
    assert {"pusht", "reacher", "cheetah", "my_arm"} <= set(cfg["embodiments"])
    assert state["dynamics.stems.my_arm.net.0.weight"].shape[1] == 25 * 5
    # 5. evaluate it as the doc does (every episode here: two are too few for a split)
    assert hma(["eval", "--ckpt", str(walked / "runs/my_arm"), "--data", str(walked / "data/my_arm"),
                "--embodiments", "my_arm", "--episodes", "all", "--windows", "1", "--trials", "1", "--gifs", "0",
                "--out", str(walked / "eval")]) == 0
    assert (walked / "eval/eval.json").is_file()


def test_the_imagine_node_runs_the_new_robot_from_its_yaml_and_checkpoint(walked, probe, launch_node):
    # 6. the node on the robot: the simulated manipulator publishes camera, joints and commands
    robot = launch_node("sim_robot_node", params_file=REPO / "config/sim_robot.yaml",
                        params={"embodiment": "manipulator"})
    node = launch_node("imagine_node", params_file=REPO / "config/imagine.yaml",
                       params={"embodiment": str(walked / "my_arm.yaml"), "checkpoint": str(walked / "runs/my_arm"),
                               "horizon": 2, "display_scale": 1})
    strips = probe.subscribe(Image, "imagined/image", qos=10)
    probe.wait_for("imagined/image", count=2, timeout=60)
    assert node.alive() and robot.alive(), node.output()
    assert (strips[-1][1].height, strips[-1][1].width) == (64, 64 * 3)  # now + 2 imagined frames
