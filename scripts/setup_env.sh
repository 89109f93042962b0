#!/usr/bin/env bash
# Creates/updates the project's virtual environment with everything hma_ros needs, pinned.
# Called by `make` (only when requirements/ or setup.py changed, see the Makefile's stamp file).
#   - system packages: libosmesa6 (MuJoCo software rendering) when missing, via apt-get;
#   - torch==2.13.0 (the CPU wheel);
#   - ROS 2 Kilted wheels from PyPI only when no ROS 2 rclpy is importable (on a robot with
#     ROS sourced, the venv sees the system rclpy through --system-site-packages);
#   - simulators, the project (editable) and its test tools.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."

if ! dpkg -s libosmesa6 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing libosmesa6 (MuJoCo software rendering)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null) \
      || echo "[setup] WARNING: could not install libosmesa6; MuJoCo simulators will not render"
  else
    echo "[setup] WARNING: libosmesa6 missing and not root: sudo apt-get install libosmesa6"
  fi
fi

SYSTEM_ROS=0
# a sourced ROS 2 distro (ROS_DISTRO set) whose rclpy imports: use it, do not install wheels
if [ -n "${ROS_DISTRO:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && python3 -c "import rclpy" >/dev/null 2>&1; then SYSTEM_ROS=1; fi

if [ ! -x "$VENV/bin/python" ]; then
  if [ "$SYSTEM_ROS" = 1 ]; then
    echo "[setup] ROS 2 rclpy found on the system: venv with --system-site-packages"
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV"
  fi
fi
# pip, quietly; this machine's pip config names local indexes that may be absent ("is ignored"
# warnings): drop those lines but keep pip's exit status (pipefail).
pip_q() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored" || true; }; }
pip_q install --upgrade "pip>=23"
# torch first and pinned, so nothing later can pull a multi-GB CUDA build.
pip_q install torch==2.13.0
if ! "$VENV/bin/python" -c "import rclpy" >/dev/null 2>&1; then
  echo "[setup] no ROS 2 rclpy importable: installing the ROS 2 Kilted wheels from PyPI"
  pip_q install -r requirements/ros.txt
fi
pip_q install -r requirements/core.txt -r requirements/sim.txt -r requirements/dev.txt torch==2.13.0
pip_q install --no-deps -e .
# Real `launch` + `launch_ros` (not on PyPI) for the launch-file tests, when the CI's shared/wheels
# folder is beside the clone; without it those tests skip, saying so.
WHEELS=../shared/wheels
if ls $WHEELS/launch-*.whl $WHEELS/launch_ros-*.whl >/dev/null 2>&1; then
  pip_q install --no-deps $WHEELS/launch-*.whl $WHEELS/launch_ros-*.whl
  pip_q install osrf-pycommon==2.0.2 lark==1.3.1
fi
"$VENV/bin/python" -c "import torch, rclpy, hma_ros; print('[setup] ok: torch', torch.__version__)"
