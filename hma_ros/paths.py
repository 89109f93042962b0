"""Where the package's installed files (config/, launch/, rviz/, models/) live.

Three layouts are supported, tried in this order:
1. a ROS 2 install (colcon or `pip install .` into a prefix): `<prefix>/share/hma_ros`, found
   through ament_index when it is importable and knows the package;
2. the current interpreter's prefix (`sys.prefix/share/hma_ros`, a plain `pip install .`);
3. the source tree (`pip install -e .` does not install data_files).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

PACKAGE = "hma_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _is_share_dir(path: Path) -> bool:
    return (path / "package.xml").is_file() and (path / "config").is_dir()


@functools.lru_cache(maxsize=1)
def share_dir() -> Path:
    """The directory holding package.xml, config/, launch/, rviz/ and models/."""
    override = os.environ.get("HMA_ROS_SHARE")
    if override:
        return Path(override)
    try:
        from ament_index_python.packages import (  # type: ignore[import-not-found]
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            candidate = Path(get_package_share_directory(PACKAGE))
            if _is_share_dir(candidate):
                return candidate
        except (PackageNotFoundError, ValueError, LookupError, OSError):
            pass
    except ImportError:
        pass
    candidate = Path(sys.prefix) / "share" / PACKAGE
    if _is_share_dir(candidate):
        return candidate
    if _is_share_dir(_SOURCE_ROOT):
        return _SOURCE_ROOT
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} share directory (config/, launch/, models/): not in the ament "
        f"index, not in {sys.prefix}/share/{PACKAGE}, not in the source tree {_SOURCE_ROOT}. "
        "Reinstall the package, or set HMA_ROS_SHARE to the directory."
    )


def config_dir() -> Path:
    return share_dir() / "config"


def models_dir() -> Path:
    return share_dir() / "models"


def launch_dir() -> Path:
    return share_dir() / "launch"


def checkpoint(name: str | os.PathLike) -> Path:
    """A checkpoint folder: the path as given if it exists, else a shipped model's name (under
    models_dir()); an unknown name comes back as given, so the loader's error names it."""
    try:
        return resolve(name, "models")
    except FileNotFoundError:
        return Path(name).expanduser()


def resolve(path: str | os.PathLike, kind: str = "config") -> Path:
    """A user path as given if it exists, else relative to the share dir's `kind` folder."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    candidate = share_dir() / kind / p
    if candidate.exists():
        return candidate
    candidate = share_dir() / p
    if candidate.exists():
        return candidate
    raise FileNotFoundError(f"{path}: no such file (also looked in {share_dir() / kind})")
