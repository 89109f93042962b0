"""LeRobot v3 datasets (a local folder) in and out: only the schema mapping lives here; parquet
is pyarrow's, video PyAV's (FFmpeg).

Layout written and read (LeRobot `CODEBASE_VERSION` v3.0):

    meta/info.json                     fps, features, path templates, totals (+ "hma": provenance)
    meta/stats.json                    per-feature mean / std / min / max / count
    meta/tasks.parquet                 task, task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, dataset_from_index,
                                       dataset_to_index, data/{chunk,file}_index, and per camera
                                       videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}
    data/chunk-000/file-000.parquet    one row per frame: action, timestamp, frame_index,
                                       episode_index, index, task_index (+ synthetic)
    videos/<key>/chunk-000/file-000.mp4  the episodes' frames back to back

Rows are at the dataset's `fps`, which for hma is the embodiment's native action rate: each row
carries one native command and the camera frame at that instant. Writing puts every episode in
one data file and one video file per camera (LeRobot's readers take any split); reading accepts
any number of chunks and files, video or image features. Video: H.264 (libx264), 4:4:4 chroma,
CRF 0 -- near-lossless; round trips lose only the RGB <-> YUV rounding.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
DEFAULT_CAMERA = "observation.image"


class LeRobotError(ValueError):
    """A LeRobot folder that cannot be read or written as asked (the message says why)."""


@dataclass
class LeRobotEpisode:
    frames: np.ndarray  # (N, H, W, 3) uint8, one per row
    actions: np.ndarray  # (N, action_dim) float32
    timestamps: np.ndarray  # (N,) s since the episode's start
    synthetic: np.ndarray | None = None  # (N,) bool: the frame was imagined, not recorded
    task: str = ""


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(),
            "max": x.max(0).tolist(), "count": [int(len(x))]}


def _encode_video(path: Path, frames: np.ndarray, fps: float) -> None:
    from fractions import Fraction

    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.options = {"crf": "0", "preset": "medium"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _decode_video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames of one mp4 (N, H, W, 3) uint8 and their presentation times (s)."""
    import av

    frames, times = [], []
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            for f in c.decode(s):
                frames.append(f.to_ndarray(format="rgb24"))
                times.append(float(f.pts * s.time_base))
    except (av.error.FFmpegError, OSError) as e:
        raise LeRobotError(f"{path}: cannot decode video ({e})") from None
    if not frames:
        raise LeRobotError(f"{path}: no video frames")
    return np.stack(frames), np.asarray(times)


def write_lerobot(out: str | Path, episodes: list[LeRobotEpisode], fps: float, action_names: list[str],
                  camera_key: str = DEFAULT_CAMERA, robot_type: str | None = None, hma_info: dict | None = None,
                  overwrite: bool = False) -> Path:
    """Write episodes as a LeRobot v3 dataset folder (atomically: a temp folder renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists() and not overwrite:
        raise LeRobotError(f"{out} exists; pass --overwrite to replace it")
    if not episodes:
        raise LeRobotError("no episodes to write")
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    h, w = episodes[0].frames.shape[1:3]
    dim = episodes[0].actions.shape[1]
    tasks = sorted({e.task for e in episodes})
    synthetic = any(e.synthetic is not None for e in episodes)
    cols = {k: [] for k in ("action", "timestamp", "frame_index", "episode_index", "index", "task_index")}
    if synthetic:
        cols["synthetic"] = []
    ep_rows, all_frames, n = [], [], 0
    for i, e in enumerate(episodes):
        m = len(e.actions)
        if e.frames.shape != (m, h, w, 3) or e.actions.shape != (m, dim) or len(e.timestamps) != m:
            raise LeRobotError(f"episode {i}: frames {e.frames.shape}, actions {e.actions.shape}, "
                               f"{len(e.timestamps)} timestamps do not line up (expected ({m}, {h}, {w}, 3))")
        cols["action"] += list(np.asarray(e.actions, np.float32))
        cols["timestamp"] += list(np.asarray(e.timestamps, np.float32))
        cols["frame_index"] += list(range(m))
        cols["episode_index"] += [i] * m
        cols["index"] += list(range(n, n + m))
        cols["task_index"] += [tasks.index(e.task)] * m
        if synthetic:
            cols["synthetic"] += list(e.synthetic if e.synthetic is not None else np.zeros(m, bool))
        ep_rows.append({"episode_index": i, "tasks": [e.task], "length": m, "data/chunk_index": 0, "data/file_index": 0,
                        "dataset_from_index": n, "dataset_to_index": n + m,
                        f"videos/{camera_key}/chunk_index": 0, f"videos/{camera_key}/file_index": 0,
                        f"videos/{camera_key}/from_timestamp": n / fps,
                        f"videos/{camera_key}/to_timestamp": (n + m) / fps,
                        "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        all_frames.append(e.frames)
        n += m
    actions = np.stack(cols["action"])
    table = {"action": pa.array(list(actions), type=pa.list_(pa.float32(), dim)),
             "timestamp": pa.array(cols["timestamp"], pa.float32()),
             **{k: pa.array(cols[k], pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")}}
    if synthetic:
        table["synthetic"] = pa.array(cols["synthetic"], pa.bool_())
    (tmp / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(table), tmp / DATA_PATH.format(chunk_index=0, file_index=0))
    _encode_video(tmp / VIDEO_PATH.format(video_key=camera_key, chunk_index=0, file_index=0),
                  np.concatenate(all_frames), fps)
    (tmp / "meta/episodes/chunk-000").mkdir(parents=True)
    ep_cols = {k: [r[k] for r in ep_rows] for k in ep_rows[0]}
    ep_cols["tasks"] = pa.array(ep_cols["tasks"], pa.list_(pa.string()))
    pq.write_table(pa.table(ep_cols), tmp / EPISODES_PATH)
    pq.write_table(pa.table({"task": tasks, "task_index": pa.array(range(len(tasks)), pa.int64())}),
                   tmp / "meta/tasks.parquet")
    scalar = {"dtype": "int64", "shape": [1], "names": None}
    features = {
        camera_key: {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                     "info": {"video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": "yuv444p",
                              "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False}},
        "action": {"dtype": "float32", "shape": [dim], "names": list(action_names)},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": scalar, "episode_index": scalar, "index": scalar, "task_index": scalar,
    }
    if synthetic:
        features["synthetic"] = {"dtype": "bool", "shape": [1], "names": None}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": len(episodes),
            "total_frames": n, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": features}
    if hma_info:
        info["hma"] = hma_info
    (tmp / "meta/info.json").write_text(json.dumps(info, indent=2) + "\n")
    stats = {"action": _stats(actions), "timestamp": _stats(np.asarray(cols["timestamp"]))}
    (tmp / "meta/stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def read_info(path: str | Path) -> dict:
    path = Path(path)
    f = path / "meta" / "info.json"
    if not f.is_file():
        raise LeRobotError(f"{path}: not a LeRobot dataset (no meta/info.json)")
    try:
        info = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise LeRobotError(f"{f}: corrupt ({e})") from None
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise LeRobotError(f"{path}: LeRobot dataset {version or 'of unknown version'}; this reader takes v3.x "
                           f"(convert with lerobot's convert_dataset_v21_to_v30)")
    for k in ("fps", "features", "data_path"):
        if k not in info:
            raise LeRobotError(f"{f}: no {k!r}")
    return info


def camera_keys(info: dict) -> list[str]:
    return [k for k, v in info["features"].items() if v.get("dtype") in ("video", "image")]


def read_lerobot(path: str | Path, camera: str | None = None, action_key: str = "action"):
    """(info, [LeRobotEpisode]) of a local LeRobot v3 folder; `camera`: which image/video
    feature (default: the only one, or the first in info.json)."""
    import pyarrow.parquet as pq

    path = Path(path)
    info = read_info(path)
    cams = camera_keys(info)
    if not cams:
        raise LeRobotError(f"{path}: no image or video feature in meta/info.json")
    camera = camera or cams[0]
    if camera not in cams:
        raise LeRobotError(f"{path}: no camera {camera!r}; it has {', '.join(cams)}")
    if action_key not in info["features"]:
        raise LeRobotError(f"{path}: no {action_key!r} feature; it has {', '.join(info['features'])}")
    files = sorted(path.glob("data/*/*.parquet"))
    if not files:
        raise LeRobotError(f"{path}: no data/*/*.parquet files")
    table = pq.read_table(files) if len(files) > 1 else pq.read_table(files[0])
    cols = table.column_names
    for k in ("episode_index", "timestamp", action_key):
        if k not in cols:
            raise LeRobotError(f"{path}: data parquet has no column {k!r} (columns: {', '.join(cols)})")
    ep_idx = np.asarray(table.column("episode_index").to_numpy())
    ts = np.asarray(table.column("timestamp").to_numpy(), np.float64)
    act = np.asarray(table.column(action_key).to_pylist(), np.float32)
    if act.ndim == 1:
        act = act[:, None]
    syn = np.asarray(table.column("synthetic").to_pylist(), bool) if "synthetic" in cols else None
    video = info["features"][camera]["dtype"] == "video"
    meta = {}
    if video:
        ep_files = sorted(path.glob("meta/episodes/*/*.parquet"))
        if not ep_files:
            raise LeRobotError(f"{path}: video features need meta/episodes/*/*.parquet (episode offsets)")
        for r in pq.read_table(ep_files).to_pylist():
            meta[int(r["episode_index"])] = r
    decoded: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    episodes = []
    fps = float(info["fps"])
    for e in np.unique(ep_idx):
        rows = np.flatnonzero(ep_idx == e)
        rows = rows[np.argsort(ts[rows], kind="stable")]
        if video:
            r = meta.get(int(e))
            if r is None:
                raise LeRobotError(f"{path}: episode {e} has rows but no entry in meta/episodes")
            vp = path / info.get("video_path", VIDEO_PATH).format(
                video_key=camera, chunk_index=int(r[f"videos/{camera}/chunk_index"]),
                file_index=int(r[f"videos/{camera}/file_index"]))
            if vp not in decoded:
                decoded[vp] = _decode_video(vp)
            all_f, all_t = decoded[vp]
            t0 = float(r[f"videos/{camera}/from_timestamp"])
            want = t0 + ts[rows]
            idx = np.clip(np.searchsorted(all_t, want - 0.5 / fps), 0, len(all_t) - 1)
            if np.abs(all_t[idx] - want).max() > 0.5 / fps:
                raise LeRobotError(f"{vp}: no frame within half a frame period of episode {e}'s timestamps")
            frames = all_f[idx]
        else:
            from io import BytesIO

            from PIL import Image

            cells = table.column(camera).to_pylist()
            frames = np.stack([np.asarray(Image.open(BytesIO(cells[i]["bytes"])).convert("RGB")) for i in rows])
        episodes.append(LeRobotEpisode(frames, act[rows], ts[rows], None if syn is None else syn[rows]))
    return info, episodes


EPISODE_SPACING = 1000.0  # s between episodes' stamps in the hma dataset (the chunker breaks at gaps)


def to_dataset(path: str | Path, embodiment, out: str | Path, camera: str | None = None,
               overwrite: bool = False, progress: bool = True) -> dict:
    """A LeRobot v3 folder -> an hma dataset through the same 2 Hz Chunker as bags and live
    nodes: each row's action is a sample of the action stream (the embodiment's action source),
    each row's frame a camera frame, at the row's timestamp (+ a per-episode offset)."""
    from tqdm import tqdm

    from hma_ros.data.chunker import Chunker
    from hma_ros.data.dataset import DatasetWriter

    info, episodes = read_lerobot(path, camera)
    fps, emb = float(info["fps"]), embodiment
    if abs(fps - emb.action_hz) > 1e-6:
        raise LeRobotError(f"{path}: fps {fps:g} but embodiment {emb.name}'s action.hz is {emb.action_hz:g}; "
                           f"rows carry one native command each, so the two must agree")
    dim = episodes[0].actions.shape[1]
    if dim != emb.action_dim:
        raise LeRobotError(f"{path}: actions have {dim} values, embodiment {emb.name} expects {emb.action_dim}")
    writer = DatasetWriter(out, emb, source=f"hma lerobot2data {path}", overwrite=overwrite)
    chunker = Chunker(emb.chunker_config)
    n_steps = 0
    try:
        for i, e in enumerate(tqdm(episodes, desc="lerobot2data", unit="ep", disable=not progress)):
            base = i * EPISODE_SPACING
            for t, a, f in zip(e.timestamps, e.actions, e.frames, strict=True):
                for s in chunker.push_action(base + float(t), a) + chunker.push_frame(
                        base + float(t), emb.image_spec.prepare(f)):
                    writer.add(s)
                    n_steps += 1
        for s in chunker.flush():
            writer.add(s)
            n_steps += 1
        meta = {"lerobot": {"path": str(path), "fps": fps, "episodes": len(episodes)}}
        if "hma" in info:
            meta["lerobot"]["hma"] = info["hma"]
        writer.close(meta)
    except BaseException:
        writer.abort()
        raise
    return {"episodes": len(writer.episodes), "steps": n_steps}
