"""rosbag2 / ROS 1 bags <-> 2 Hz steps, through the `rosbags` library (pure Python, no ROS).

Reading: camera (Image or CompressedImage), the action source (a command topic's field, or
joint positions by name from JointState) go through the shared image conversion and the shared
Chunker, exactly like the live nodes. Writing: `BagRecorder` records simulator rollouts as a
robot would (sensor_msgs/Image, sensor_msgs/JointState, the command topic), mcap by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hma_ros.data.chunker import Chunker, Step
from hma_ros.data.embodiment import Embodiment
from hma_ros.data.images import ImageError, compressed_to_rgb, image_to_rgb


class BagError(ValueError):
    pass


def _typestore(ros1: bool):
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_JAZZY)


# ------------------------------------------------------------------------------- writing
class BagRecorder:
    """Writes a rosbag2 with the embodiment's camera, joint-state and command topics."""

    def __init__(self, path: str | Path, emb: Embodiment, storage: str = "mcap"):
        from rosbags.rosbag2 import Writer
        from rosbags.rosbag2.enums import StoragePlugin

        self.ts = _typestore(False)
        self.emb = emb
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(Path(path), version=9, storage_plugin=plugin)
        self.writer.open()
        T = self.ts.types
        self.Image, self.JointState = T["sensor_msgs/msg/Image"], T["sensor_msgs/msg/JointState"]
        self.Header, self.Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
        self.F64 = T["std_msgs/msg/Float64MultiArray"]
        self.Layout = T["std_msgs/msg/MultiArrayLayout"]
        self.c_img = self.writer.add_connection(emb.camera_topic, "sensor_msgs/msg/Image", typestore=self.ts)
        self.c_js = self.writer.add_connection(emb.joint_topic, "sensor_msgs/msg/JointState", typestore=self.ts)
        self.c_cmd = None
        if emb.action_source == "command":
            self.c_cmd = self.writer.add_connection(emb.command_topic, "std_msgs/msg/Float64MultiArray",
                                                    typestore=self.ts)

    def _header(self, t: float, frame_id: str = ""):
        ns = int(round(t * 1e9))
        return self.Header(stamp=self.Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id)

    def image(self, t: float, rgb: np.ndarray, frame_id: str = "sim_camera") -> None:
        h, w, _ = rgb.shape
        msg = self.Image(header=self._header(t, frame_id), height=h, width=w, encoding="rgb8",
                         is_bigendian=0, step=3 * w, data=np.ascontiguousarray(rgb, np.uint8).reshape(-1))
        self.writer.write(self.c_img, int(round(t * 1e9)), self.ts.serialize_cdr(msg, msg.__msgtype__))

    def joints(self, t: float, names, positions) -> None:
        msg = self.JointState(header=self._header(t), name=list(names),
                              position=np.asarray(positions, np.float64),
                              velocity=np.zeros(0), effort=np.zeros(0))
        self.writer.write(self.c_js, int(round(t * 1e9)), self.ts.serialize_cdr(msg, msg.__msgtype__))

    def command(self, t: float, action) -> None:
        msg = self.F64(layout=self.Layout(dim=[], data_offset=0), data=np.asarray(action, np.float64))
        self.writer.write(self.c_cmd, int(round(t * 1e9)), self.ts.serialize_cdr(msg, msg.__msgtype__))

    def close(self) -> None:
        self.writer.close()


# ------------------------------------------------------------------------------- reading
@dataclass
class BagReport:
    path: str
    messages: int = 0
    frames: int = 0
    actions: int = 0
    bad_images: int = 0
    bad_actions: int = 0
    steps: int = 0
    valid_steps: int = 0
    stopped_early: str = ""
    notes: list[str] = field(default_factory=list)


def _field(msg, path: str):
    node = msg
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


def _stamp(msg, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None:
        t = header.stamp.sec + 1e-9 * header.stamp.nanosec
        if t > 0:
            return t
    return log_ns * 1e-9


def _is_ros1(path: Path) -> bool:
    return path.is_file() and path.suffix == ".bag"


def open_reader(path: Path):
    from rosbags.highlevel import AnyReader

    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = AnyReader([path], default_typestore=_typestore(_is_ros1(path)))
        reader.open()
    except Exception as e:  # rosbags raises several types for unreadable bags
        raise BagError(f"{path}: cannot open as a ROS 1 bag or rosbag2 ({type(e).__name__}: {e})") from None
    return reader


def bag_steps(path: str | Path, emb: Embodiment, camera_topic: str | None = None,
              action_topic: str | None = None, action_field: str | None = None,
              report: BagReport | None = None, progress=None) -> Iterator[tuple[Step, np.ndarray | None]]:
    """Yield (step, model-size frame) from one bag. Frames are decoded and resized as they are
    read, so memory stays bounded whatever the bag size. Bad messages are counted, not fatal."""
    path = Path(path)
    report = report if report is not None else BagReport(str(path))
    reader = open_reader(path)
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        cam = camera_topic or emb.camera_topic
        if cam not in topics and not camera_topic and emb.compressed_topic in topics:
            cam = emb.compressed_topic
        src = emb.action_source
        act = action_topic or (emb.command_topic if src == "command" else emb.joint_topic)
        fld = action_field or emb.command_field
        missing = [t for t in (cam, act) if t not in topics]
        if missing:
            listing = "\n  ".join(f"{t} [{m}]" for t, m in sorted(topics.items()))
            raise BagError(f"{path}: topic(s) {', '.join(missing)} not in the bag. It has:\n  {listing}\n"
                           "Set the topics in the embodiment config or with --camera-topic/--action-topic.")
        cam_type = topics[cam]
        if cam_type.split("/")[-1] not in ("Image", "CompressedImage"):
            raise BagError(f"{path}: camera topic {cam} is {cam_type}, not sensor_msgs Image/CompressedImage")
        conns = [c for c in reader.connections if c.topic in (cam, act)]
        total = sum(c.msgcount for c in conns)
        if progress is not None:
            progress.reset(total=total)
        chunker = Chunker(emb.chunker_config)
        spec = emb.image_spec
        names = list(emb.joint_names)
        it = reader.messages(connections=conns)
        while True:
            try:
                conn, log_ns, raw = next(it)
                msg = reader.deserialize(raw, conn.msgtype)
            except StopIteration:
                break
            except Exception as e:
                report.stopped_early = (f"stopped after {report.messages} messages "
                                        f"({type(e).__name__}: {e}); kept what was read before")
                break
            report.messages += 1
            if progress is not None:
                progress.update(1)
            t = _stamp(msg, log_ns)
            if conn.topic == cam:
                try:
                    if cam_type.endswith("CompressedImage"):
                        rgb = compressed_to_rgb(msg.format, msg.data)
                    else:
                        rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                                           msg.is_bigendian)
                except ImageError as e:
                    report.bad_images += 1
                    if report.bad_images <= 3:
                        report.notes.append(f"{cam} at t={t:.3f}: {e}")
                    continue
                report.frames += 1
                steps = chunker.push_frame(t, spec.prepare(rgb))
            else:
                vec = _action_vector(msg, src, fld, names, report, t)
                if vec is None:
                    continue
                report.actions += 1
                steps = chunker.push_action(t, vec)
            for s in steps:
                report.steps += 1
                report.valid_steps += int(s.valid)
                yield s, s.frame
        for s in chunker.flush():
            report.steps += 1
            report.valid_steps += int(s.valid)
            yield s, s.frame
        report.notes += [m for m in chunker.stats.messages if m not in report.notes][:5]
    finally:
        reader.close()


def _action_vector(msg, source: str, fld: str, names: list[str], report: BagReport, t: float):
    try:
        if source == "command":
            return np.asarray(_field(msg, fld), dtype=np.float64).reshape(-1)
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in names if n not in index]
        if missing:
            report.bad_actions += 1
            if report.bad_actions <= 3:
                report.notes.append(f"joint_states at t={t:.3f}: missing joints {missing[:5]}")
            return None
        pos = np.asarray(msg.position, dtype=np.float64)
        return pos[[index[n] for n in names]]
    except (AttributeError, IndexError, TypeError, ValueError) as e:
        report.bad_actions += 1
        if report.bad_actions <= 3:
            report.notes.append(f"action at t={t:.3f}: cannot read field {fld!r} ({e})")
        return None
