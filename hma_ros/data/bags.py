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
    """A rosbags AnyReader, opened, for a ROS 1 bag or a rosbag2 (folder or file)."""
    from rosbags.highlevel import AnyReader

    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = AnyReader([path], default_typestore=_typestore(_is_ros1(path)))
        reader.open()
    except Exception as e:  # rosbags raises several types for unreadable bags
        raise BagError(f"{path}: cannot open as a ROS 1 bag or rosbag2 ({type(e).__name__}: {e})") from None
    return reader


class _ReaderSource:
    """Messages through rosbags' AnyReader (indexed bags)."""

    def __init__(self, reader):
        self.reader = reader
        self.topics = {c.topic: c.msgtype for c in reader.connections}
        self.note = ""

    def count(self, topics) -> int:
        return sum(c.msgcount for c in self.reader.connections if c.topic in topics)

    def messages(self, topics):
        conns = [c for c in self.reader.connections if c.topic in topics]
        for conn, log_ns, raw in self.reader.messages(connections=conns):
            yield conn.topic, log_ns, self.reader.deserialize(raw, conn.msgtype)

    def close(self):
        self.reader.close()


class _McapSalvage:
    """Sequential scan of an MCAP file whose footer/summary is missing (a recording cut off by
    a crash or a full disk): reads records in order and stops at the first incomplete one."""

    def __init__(self, file: Path):
        import struct

        self.file, self.struct = file, struct
        self.ts = _typestore(False)
        self.size = file.stat().st_size
        self.stopped_at: int | None = None
        self.topics: dict[str, str] = {}
        self._channels: dict[int, tuple[str, str]] = {}
        for _ in self._records(meta_only=True):
            pass
        self.note = (f"{file.name} has no MCAP footer/index (truncated?): read sequentially up to "
                     f"byte {self.stopped_at} of {self.size}")

    def _records(self, meta_only: bool = False):
        import io

        st = self.struct
        schemas: dict[int, str] = {}
        with open(self.file, "rb") as f:
            if f.read(8) != b"\x89MCAP0\r\n":
                raise BagError(f"{self.file}: not an MCAP file")
            stack = [(f, self.size)]
            while stack:
                bio, end = stack[-1]
                pos = bio.tell()
                head = bio.read(9)
                if len(head) < 9 or pos + 9 > end:
                    if bio is f:
                        self.stopped_at = pos
                    stack.pop()
                    continue
                op, length = head[0], st.unpack("<Q", head[1:])[0]
                if pos + 9 + length > end:  # record cut off
                    if bio is f:
                        self.stopped_at = pos
                        body = bio.read()
                        n = st.unpack("<I", body[28:32])[0] if op == 0x06 and len(body) >= 32 else -1
                        if n == 0:  # an uncompressed chunk: its complete records are still good
                            stack[-1] = (io.BytesIO(body[40:]), len(body) - 40)
                            continue
                    stack.pop()
                    continue
                body = bio.read(length)
                if op == 0x03:  # schema: id u16, name, encoding, data
                    sid = st.unpack("<H", body[:2])[0]
                    n = st.unpack("<I", body[2:6])[0]
                    schemas[sid] = body[6:6 + n].decode()
                elif op == 0x04:  # channel: id u16, schema u16, topic, encoding, metadata
                    cid, sid = st.unpack("<HH", body[:4])
                    n = st.unpack("<I", body[4:8])[0]
                    topic = body[8:8 + n].decode()
                    self._channels[cid] = (topic, schemas.get(sid, ""))
                    self.topics[topic] = schemas.get(sid, "")
                elif op == 0x05 and not meta_only:  # message: channel u16, seq u32, log u64, pub u64, data
                    cid = st.unpack("<H", body[:2])[0]
                    log_ns = st.unpack("<Q", body[6:14])[0]
                    yield cid, log_ns, body[22:]
                elif op == 0x06:  # chunk: start, end, size, crc, compression, records
                    n = st.unpack("<I", body[28:32])[0]
                    compression = body[32:32 + n].decode()
                    csize = st.unpack("<Q", body[32 + n:40 + n])[0]
                    data = body[40 + n:40 + n + csize]
                    if compression == "zstd":
                        import zstandard

                        data = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
                    elif compression == "lz4":
                        import lz4.frame

                        data = lz4.frame.decompress(data)
                    stack.append((io.BytesIO(data), len(data)))
                elif op == 0x02:  # footer: the file is complete after all
                    if bio is f:
                        self.stopped_at = pos
                    stack.pop()
                    continue

    def count(self, topics) -> int:
        return 0

    def messages(self, topics):
        for cid, log_ns, data in self._records():
            topic, msgtype = self._channels.get(cid, ("", ""))
            if topic in topics:
                yield topic, log_ns, self.ts.deserialize_cdr(data, msgtype)

    def close(self):
        pass


def _open_source(path: Path):
    try:
        return _ReaderSource(open_reader(path))
    except BagError:
        mcaps = [path] if path.suffix == ".mcap" else sorted(path.glob("*.mcap")) if path.is_dir() else []
        if len(mcaps) == 1:
            try:
                return _McapSalvage(mcaps[0])
            except Exception:
                pass
        raise


def bag_steps(path: str | Path, emb: Embodiment, camera_topic: str | None = None,
              action_topic: str | None = None, action_field: str | None = None,
              report: BagReport | None = None, progress=None) -> Iterator[tuple[Step, np.ndarray | None]]:
    """Yield (step, model-size frame) from one bag. Frames are decoded and resized as they are
    read, so memory stays bounded whatever the bag size. Bad messages are counted, not fatal;
    a bag that ends mid-record keeps everything before and says where it stopped."""
    path = Path(path)
    report = report if report is not None else BagReport(str(path))
    source = _open_source(path)
    try:
        topics = source.topics
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
        # a command-driven robot at rest: its joint states carry the hold action (Chunker.push_hold)
        hold = (src == "command" and emb.at_rest != "none" and emb.joint_topic in topics
                and emb.joint_topic not in (cam, act))
        wanted = (cam, act, emb.joint_topic) if hold else (cam, act)
        if progress is not None:
            progress.reset(total=source.count(wanted) or None)
        chunker = Chunker(emb.chunker_config)
        spec = emb.image_spec
        it = source.messages(wanted)
        while True:
            try:
                topic, log_ns, msg = next(it)
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
            if topic == cam:
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
            elif topic != act:  # hold samples (only read when `hold`)
                joints = None
                if emb.at_rest == "joints":
                    try:
                        joints = emb.joint_vector(msg.name, msg.position)
                    except (AttributeError, ValueError):
                        continue
                steps = chunker.push_hold(t, joints)
            else:
                vec = _action_vector(msg, emb, fld, report, t)
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
        if source.note and not report.stopped_early:
            report.stopped_early = source.note + "; kept every complete message before that"
        report.notes += [m for m in chunker.stats.messages if m not in report.notes][:5]
    finally:
        source.close()


def _action_vector(msg, emb, fld: str, report: BagReport, t: float):
    if emb.action_source != "command":
        try:
            return emb.joint_vector(msg.name, msg.position)
        except ValueError as e:
            report.bad_actions += 1
            if report.bad_actions <= 3:
                report.notes.append(f"joint_states at t={t:.3f}: {e}")
            return None
    try:
        return np.asarray(_field(msg, fld), dtype=np.float64).reshape(-1)
    except (AttributeError, IndexError, TypeError, ValueError) as e:
        report.bad_actions += 1
        if report.bad_actions <= 3:
            report.notes.append(f"action at t={t:.3f}: cannot read field {fld!r} ({e})")
        return None
