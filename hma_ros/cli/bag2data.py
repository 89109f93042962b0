"""`hma bag2data`: rosbag2 (sqlite3, mcap) and ROS 1 bags -> a 2 Hz dataset, through the same
image conversion and chunker as the live nodes.

    hma bag2data run1/ run2.mcap --embodiment pusht --out data/pusht_real
    hma bag2data robot.bag --embodiment my_robot.yaml --camera-topic /cam/image_raw --out d/
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="rosbags -> 2 Hz dataset", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", help="bag files or rosbag2 folders; each bag starts a new episode")
    p.add_argument("--embodiment", required=True, help="embodiment name (config/embodiments) or YAML path")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--camera-topic", help="override the embodiment's camera topic")
    p.add_argument("--action-topic", help="override the command (or joint_states) topic")
    p.add_argument("--action-field", help="override the message field holding the action, e.g. data")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from hma_ros.cli import CliError
    from hma_ros.data.bags import BagError, BagReport, bag_steps
    from hma_ros.data.dataset import DatasetError, DatasetWriter
    from hma_ros.data.embodiment import ConfigError, load_embodiment

    try:
        emb = load_embodiment(args.embodiment)
    except ConfigError as e:
        raise CliError(str(e)) from None
    out = Path(args.out)
    try:
        writer = DatasetWriter(out, emb, source="hma bag2data: " + ", ".join(args.bags), overwrite=args.overwrite)
    except DatasetError as e:
        raise CliError(str(e)) from None
    reports: list[BagReport] = []
    try:
        for i, bag in enumerate(args.bags):
            report = BagReport(bag)
            reports.append(report)
            with tqdm(desc=Path(bag).name[:30], unit="msg", total=0) as bar:
                for step, _frame in bag_steps(bag, emb, args.camera_topic, args.action_topic,
                                              args.action_field, report, progress=bar):
                    writer.add(step, episode_key=i)
    except BagError as e:
        writer.abort()
        raise CliError(str(e)) from None
    except BaseException:
        writer.abort()
        raise
    for r in reports:
        print(f"{r.path}: {r.messages} messages, {r.frames} frames, {r.actions} action samples -> "
              f"{r.steps} steps ({r.valid_steps} valid)")
        if r.bad_images or r.bad_actions:
            print(f"  skipped {r.bad_images} bad images, {r.bad_actions} bad action messages")
        for note in r.notes[:6]:
            print(f"  note: {note}")
        if r.stopped_early:
            print(f"  WARNING: {r.stopped_early}")
    valid = sum(r.valid_steps for r in reports)
    if valid == 0:
        writer.abort()
        why = []
        if not any(r.frames for r in reports):
            why.append("no camera frame could be decoded")
        if not any(r.actions for r in reports):
            src = emb.command_topic if emb.action_source == "command" else f"{emb.joint_topic} ({', '.join(emb.joint_names[:4])}...)"
            why.append(f"no action samples were read from {src}")
        if not why:
            why.append("camera frames and action samples never overlapped in time for a whole 0.5 s step "
                       "(check that both streams cover the same period and their stamps agree)")
        raise CliError("zero complete steps: " + "; ".join(why) + ". Nothing was written.")
    path = writer.close({"bags": [r.__dict__ for r in reports]})
    print(f"wrote {writer.n} steps ({valid} valid) in {len(writer.episodes)} episodes to {path}")
    return 0
