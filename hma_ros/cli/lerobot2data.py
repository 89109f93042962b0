"""`hma lerobot2data LEROBOT_DIR --embodiment E --out OUT`: a local LeRobot v3 dataset to an hma
dataset, through the same 2 Hz chunker as bags and live nodes. The dataset's `fps` must be the
embodiment's native action rate (one command per row); frames come from its image or video
feature (`--camera`, default the first), actions from `action`."""

from __future__ import annotations


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="LeRobot v3 dataset -> hma dataset", description=__doc__)
    p.add_argument("lerobot_dir")
    p.add_argument("--embodiment", required=True, help="embodiment config name or YAML path (e.g. pusht)")
    p.add_argument("--out", required=True, help="the hma dataset folder to write")
    p.add_argument("--camera", default=None, help="image/video feature key (default: the first)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from hma_ros.cli import CliError
    from hma_ros.data.dataset import DatasetError
    from hma_ros.data.embodiment import ConfigError, load_embodiment
    from hma_ros.data.lerobot import LeRobotError, to_dataset

    try:
        emb = load_embodiment(args.embodiment)
        res = to_dataset(args.lerobot_dir, emb, args.out, args.camera, args.overwrite)
    except (LeRobotError, DatasetError, ConfigError) as e:
        raise CliError(str(e)) from None
    print(f"{args.lerobot_dir} -> {args.out}: {res['episodes']} episodes, {res['steps']} steps")
    return 0
