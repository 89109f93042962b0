#!/usr/bin/env python3
"""`make demo`: the hma_ros graph against a simulated robot, as real ROS 2 processes.

Current graph: sim_robot_node (PushT on the real gym-pusht simulator) publishing camera frames
and joint states over DDS, and recorder_node subscribing for DURATION seconds; writes
out/demo.gif and out/recording.json and prints the measured rates. (The imagine node joins this
graph when the model lands; see the issue tracker.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start(exe: str, params: dict, log: Path) -> subprocess.Popen:
    args = [str(Path(sys.executable).parent / exe), "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--embodiment", default="pusht")
    ap.add_argument("--out", default=str(REPO / "out"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config/fastdds_shm.xml"))
    print(f"[demo] ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (localhost only); "
          f"running {args.duration:.0f} s; logs in {out}/")
    robot = start("sim_robot_node", {"embodiment": args.embodiment}, out / "sim_robot.log")
    recorder = start("recorder_node", {"duration": args.duration, "out_dir": str(out),
                                       "gif_name": "demo.gif"}, out / "recorder.log")
    try:
        recorder.wait(timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        print("[demo] recorder did not finish in time", file=sys.stderr)
    finally:
        for p in (robot, recorder):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
    summary_path = out / "recording.json"
    if not summary_path.exists():
        print("[demo] FAILED: no recording; see", out / "sim_robot.log", out / "recorder.log", file=sys.stderr)
        return 1
    s = json.loads(summary_path.read_text())
    print(f"[demo] received {s['frames']} camera frames at {s['camera_hz']} Hz and "
          f"{s['joint_states']} joint states at {s['joint_hz']} Hz over DDS")
    print(f"[demo] wrote {s.get('gif', '(no gif)')}")
    return 0 if s["frames"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
