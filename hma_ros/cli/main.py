"""The `hma` command: offline tools around HMA world models.

Each subcommand lives in its own module under hma_ros/cli/ and registers itself here; heavy
imports (torch, simulators, rosbags) happen inside the subcommand, so `hma --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hma_ros import __version__
from hma_ros.cli import CliError

# subcommand name -> module under hma_ros.cli exposing add_parser(subparsers) and run(args)
SUBCOMMANDS: dict[str, str] = {
    "paths": "hma_ros.cli.paths_cmd",
    "gen-data": "hma_ros.cli.gen_data",
    "bag2data": "hma_ros.cli.bag2data",
    "data": "hma_ros.cli.data_cmd",
    "train-tokenizer": "hma_ros.cli.train_tokenizer",
    "train": "hma_ros.cli.train",
    "eval": "hma_ros.cli.eval_cmd",
    "bench": "hma_ros.cli.bench",
    "imagine": "hma_ros.cli.imagine_cmd",
    "policy-eval": "hma_ros.cli.policy_eval",
    "train-judge": "hma_ros.cli.train_judge",
    "train-bc": "hma_ros.cli.train_bc",
    "export": "hma_ros.cli.export_cmd",
    "synth": "hma_ros.cli.synth_cmd",
    "lerobot2data": "hma_ros.cli.lerobot2data",
    "gen-closed-loop": "hma_ros.cli.gen_closed_loop",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hma", description="HMA world models for ROS 2 robots: data, training, eval, benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"hma_ros {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        importlib.import_module(module).add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"hma {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hma {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
