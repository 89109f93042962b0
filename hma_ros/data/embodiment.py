"""Embodiment configs (config/embodiments/*.yaml): what a robot's camera and actions are, and
how they become 2 Hz steps. Validated once at load; errors name the file and the key."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hma_ros import paths
from hma_ros.data.chunker import REST_MODES, ChunkerConfig
from hma_ros.data.images import ImageSpec

ACTION_SOURCES = ("command", "joint_positions", "joint_deltas")


class ConfigError(ValueError):
    """A config file with a missing or bad key; the message names the file and the key."""


@dataclass(frozen=True)
class Embodiment:
    name: str
    action_dim: int
    action_hz: float
    action_source: str  # command | joint_positions | joint_deltas
    camera_topic: str = "image_raw"
    compressed_topic: str = "image_raw/compressed"
    image_size: tuple[int, int] = (64, 64)
    crop: str = "center"
    joint_topic: str = "joint_states"
    joint_names: tuple[str, ...] = ()
    command_topic: str = ""
    command_type: str = ""
    command_field: str = "data"
    interpolation: str = "zoh"
    frame_tolerance: float = 0.25
    max_gap: float = 2.0
    at_rest: str = "none"  # command-driven robot at rest: joints | last | zero (ChunkerConfig.at_rest)
    command_timeout: float = 0.5  # s: older commands count as none (the robot is holding)
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    sim: str | None = None
    camera_hz: float | None = None  # native camera rate for simulated data
    source_file: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def image_spec(self) -> ImageSpec:
        return ImageSpec(size=self.image_size, crop=self.crop)

    @property
    def chunker_config(self) -> ChunkerConfig:
        return ChunkerConfig(
            action_hz=self.action_hz, action_dim=self.action_dim, interpolation=self.interpolation,
            frame_tolerance=self.frame_tolerance, max_gap=self.max_gap,
            transform="delta" if self.action_source == "joint_deltas" else "none",
            at_rest=self.at_rest, command_timeout=self.command_timeout,
        )

    def joint_vector(self, names, positions) -> np.ndarray:
        """This embodiment's joints, in its order, from a JointState's (name, position) lists.
        ValueError (what is wrong, what to check) on missing joints, a length mismatch or NaN."""
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            raise ValueError(f"missing joints {missing[:6]} (have {list(names)[:6]}...); "
                             f"check joints.names in {self.source_file or self.name}")
        pos = np.asarray(positions, dtype=np.float64)
        if len(pos) != len(names):
            raise ValueError(f"{len(names)} names but {len(pos)} positions")
        vec = pos[[index[n] for n in self.joint_names]]
        if not np.all(np.isfinite(vec)):
            raise ValueError(f"NaN/inf position for {list(self.joint_names)}")
        return vec

    @property
    def has_limits(self) -> bool:
        return self.action_low is not None and self.action_high is not None

    @property
    def stride(self) -> int:
        return self.chunker_config.stride

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source_file")
        return d


def _get(doc: dict, key: str, where: str, kind, default: Any = ..., choices=None):
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(f"{where}: missing key '{key}'")
            return default
        node = node[part]
    try:
        if kind is tuple:
            if not isinstance(node, (list, tuple)):
                raise TypeError
            value = tuple(node)
        elif kind is float:
            if isinstance(node, bool):
                raise TypeError
            value = float(node)
        elif kind is int:
            if isinstance(node, bool) or int(node) != node:
                raise TypeError
            value = int(node)
        else:
            if not isinstance(node, kind):
                raise TypeError
            value = node
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: key '{key}' must be {kind.__name__}, got {node!r}") from None
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: key '{key}' must be one of {list(choices)}, got {value!r}")
    return value


def embodiment_from_dict(doc: dict, where: str = "<dict>") -> Embodiment:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    name = _get(doc, "name", where, str)
    source = _get(doc, "action.source", where, str, choices=ACTION_SOURCES)
    joint_names = tuple(str(j) for j in _get(doc, "joints.names", where, tuple, ()))
    if source == "command":
        dim = _get(doc, "action.dim", where, int)
        topic = _get(doc, "action.topic", where, str)
        ctype = _get(doc, "action.type", where, str)
    else:
        if not joint_names:
            raise ConfigError(f"{where}: key 'joints.names' is required when action.source is {source}")
        dim = _get(doc, "action.dim", where, int, len(joint_names))
        if dim != len(joint_names):
            raise ConfigError(f"{where}: key 'action.dim' is {dim} but joints.names lists {len(joint_names)} joints")
        topic, ctype = "", ""
    if dim < 1:
        raise ConfigError(f"{where}: key 'action.dim' must be >= 1, got {dim}")
    hz = _get(doc, "action.hz", where, float)
    if not hz > 0:
        raise ConfigError(f"{where}: key 'action.hz' must be > 0, got {hz}")
    size = _get(doc, "camera.size", where, tuple, (64, 64))
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ConfigError(f"{where}: key 'camera.size' must be [height, width] in pixels, got {list(size)}")
    low = _get(doc, "action.low", where, tuple, None)
    high = _get(doc, "action.high", where, tuple, None)
    for key, lim in (("action.low", low), ("action.high", high)):
        if lim is not None and len(lim) != dim:
            raise ConfigError(f"{where}: key '{key}' has {len(lim)} values, action.dim is {dim}")
    # a command-driven robot that sends no commands holds still (default: its last command)
    at_rest = _get(doc, "action.at_rest", where, str, "last" if source == "command" else "none", choices=REST_MODES)
    if source != "command" and at_rest != "none":
        raise ConfigError(f"{where}: key 'action.at_rest' applies to action.source command only "
                          f"(joint sources are never silent while the robot stands still)")
    if at_rest == "joints" and len(joint_names) != dim:
        raise ConfigError(f"{where}: key 'action.at_rest' is 'joints' (hold the measured positions) but joints.names "
                          f"lists {len(joint_names)} joints for a {dim}-D action")
    timeout = _get(doc, "action.command_timeout", where, float, 0.5)
    if not timeout > 0:
        raise ConfigError(f"{where}: key 'action.command_timeout' must be > 0 seconds, got {timeout}")
    tol = _get(doc, "chunker.frame_tolerance", where, float, 0.25)
    if not 0 < tol <= 0.5:
        raise ConfigError(f"{where}: key 'chunker.frame_tolerance' must be in (0, 0.5], got {tol}")
    return Embodiment(
        name=name, action_dim=dim, action_hz=hz, action_source=source,
        camera_topic=_get(doc, "camera.topic", where, str, "image_raw"),
        compressed_topic=_get(doc, "camera.compressed_topic", where, str, "image_raw/compressed"),
        image_size=(int(size[0]), int(size[1])),
        crop=_get(doc, "camera.crop", where, str, "center", choices=("center", "none")),
        joint_topic=_get(doc, "joints.topic", where, str, "joint_states"),
        joint_names=joint_names, command_topic=topic, command_type=ctype,
        command_field=_get(doc, "action.field", where, str, "data"),
        interpolation=_get(doc, "action.interpolation", where, str, "zoh", choices=("zoh", "linear")),
        frame_tolerance=tol,
        max_gap=_get(doc, "chunker.max_gap", where, float, 2.0),
        at_rest=at_rest, command_timeout=timeout,
        action_low=tuple(float(v) for v in low) if low is not None else None,
        action_high=tuple(float(v) for v in high) if high is not None else None,
        sim=_get(doc, "sim.name", where, str, None),
        camera_hz=_get(doc, "sim.camera_hz", where, float, None),
        source_file=where,
    )


def embodiments_dir() -> Path:
    return paths.config_dir() / "embodiments"


def available_embodiments() -> list[str]:
    return sorted(p.stem for p in embodiments_dir().glob("*.yaml"))


def load_embodiment(name_or_path: str | Path) -> Embodiment:
    """Load by name (config/embodiments/NAME.yaml) or by path to a YAML file."""
    p = Path(name_or_path)
    if not p.suffix:
        p = embodiments_dir() / f"{name_or_path}.yaml"
        if not p.is_file():
            raise ConfigError(
                f"unknown embodiment {str(name_or_path)!r}: no {p}. "
                f"Known: {', '.join(available_embodiments())}, or pass a path to a YAML file."
            )
    if not p.is_file():
        raise ConfigError(f"{p}: no such embodiment file")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return embodiment_from_dict(doc, str(p))
