"""`hma paths`: where hma_ros finds its config, launch files, models and DDS profile."""

from __future__ import annotations

from hma_ros import paths


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show where config/, launch/, models/ are found")
    p.set_defaults(func=run)


def run(_args) -> int:
    print(f"share:   {paths.share_dir()}")
    print(f"config:  {paths.config_dir()}")
    print(f"launch:  {paths.launch_dir()}")
    print(f"models:  {paths.models_dir()}")
    print(f"dds:     {paths.config_dir() / 'fastdds_shm.xml'}")
    return 0
