"""Dataset on disk: one directory per embodiment, memory-mappable, written atomically.

    DIR/meta.json          format name + version, embodiment config, shapes, episodes, stats
    DIR/frames.u8          (N, H, W, 3) uint8     raw, C order (np.memmap)
    DIR/actions.f32        (N, stride, action_dim) float32 (zeros where masked)
    DIR/action_mask.u8     (N, stride) bool
    DIR/frame_mask.u8      (N,) bool
    DIR/episode.i32        (N,) int32   episode id (steps of an episode are contiguous)
    DIR/t.f64              (N,) float64 tick time
    DIR/state.f32          (N, S) float32 simulator ground truth (optional; keys in meta)

Writes go to a sibling temp directory; meta.json is written last and the directory renamed into
place, so a half-written dataset is never found at DIR. Readers refuse a directory without a
complete meta.json of a known version.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hma_ros.data.chunker import Step
from hma_ros.data.embodiment import Embodiment

FORMAT = "hma_ros.dataset"
VERSION = 1


class DatasetError(ValueError):
    pass


_ARRAYS = {  # name -> (file, dtype)
    "frames": ("frames.u8", np.uint8),
    "actions": ("actions.f32", np.float32),
    "action_mask": ("action_mask.u8", np.bool_),
    "frame_mask": ("frame_mask.u8", np.bool_),
    "episode": ("episode.i32", np.int32),
    "t": ("t.f64", np.float64),
    "state": ("state.f32", np.float32),
}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(parent: Path) -> list[Path]:
    """Remove temp folders (`.NAME.tmp-PID-MS`) that writers killed hard (kill -9, power loss)
    left beside their output: those whose PID is no longer running on this machine. A live
    writer's temp folder is never touched. Returns what was removed."""
    removed = []
    if not parent.is_dir():
        return removed
    for d in parent.glob(".*.tmp-*-*"):
        try:
            pid = int(d.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if d.is_dir() and pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class DatasetWriter:
    """Streams steps to disk with bounded memory; `close()` makes the dataset appear atomically.

    Episodes are renumbered 0..E-1 in order of appearance; a step whose (source, episode) key
    differs from the previous one starts a new episode. Steps without a frame are kept (with
    frame_mask False) so gaps stay visible; readers never train across them."""

    def __init__(self, out: str | Path, embodiment: Embodiment, source: str = "",
                 state_keys: tuple[str, ...] = (), overwrite: bool = False):
        self.out = Path(out)
        if self.out.exists() and not overwrite:
            raise DatasetError(f"{self.out} exists; pass --overwrite to replace it")
        self.emb = embodiment
        self.source = source
        self.state_keys = tuple(state_keys)
        self.tmp = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}-{int(time.time() * 1e3)}"
        self.removed_stale = remove_stale_temps(self.out.parent)
        self.tmp.mkdir(parents=True)
        self.files = {k: open(self.tmp / f, "wb") for k, (f, _) in _ARRAYS.items()
                      if k != "state" or self.state_keys}
        self.n = 0
        self.episodes: list[list[int]] = []  # [start, length]
        self._last_key = None
        self.h, self.w = embodiment.image_size
        self._sum = np.zeros(embodiment.action_dim)
        self._sumsq = np.zeros(embodiment.action_dim)
        self._count = 0
        self._min = np.full(embodiment.action_dim, np.inf)
        self._max = np.full(embodiment.action_dim, -np.inf)
        self.closed = False

    def add(self, step: Step, episode_key=None, frame: np.ndarray | None = None) -> None:
        """Append one step. `frame` overrides step.frame (already an (H, W, 3) uint8 array)."""
        key = (episode_key, step.episode)
        if key != self._last_key:
            self.episodes.append([self.n, 0])
            self._last_key = key
        img = frame if frame is not None else step.frame
        if img is None:
            img = np.zeros((self.h, self.w, 3), np.uint8)
            has_frame = False
        else:
            has_frame = True
            if img.shape != (self.h, self.w, 3) or img.dtype != np.uint8:
                raise DatasetError(f"frame shape {img.shape} {img.dtype}: expected ({self.h}, {self.w}, 3) uint8")
        self.files["frames"].write(np.ascontiguousarray(img).tobytes())
        self.files["actions"].write(np.ascontiguousarray(step.actions, np.float32).tobytes())
        self.files["action_mask"].write(np.ascontiguousarray(step.action_mask, np.bool_).tobytes())
        self.files["frame_mask"].write(np.bool_(has_frame).tobytes())
        self.files["episode"].write(np.int32(len(self.episodes) - 1).tobytes())
        self.files["t"].write(np.float64(step.t).tobytes())
        if self.state_keys:
            extra = step.extra or {}
            row = np.array([float(extra.get(k, np.nan)) for k in self.state_keys], np.float32)
            self.files["state"].write(row.tobytes())
        valid = step.actions[step.action_mask].astype(np.float64)
        if valid.size:
            self._sum += valid.sum(0)
            self._sumsq += (valid**2).sum(0)
            self._count += valid.shape[0]
            self._min = np.minimum(self._min, valid.min(0))
            self._max = np.maximum(self._max, valid.max(0))
        self.episodes[-1][1] += 1
        self.n += 1

    def stats(self) -> dict:
        if self._count == 0:
            zeros = [0.0] * self.emb.action_dim
            return {"mean": zeros, "std": [1.0] * self.emb.action_dim, "min": zeros, "max": zeros, "count": 0}
        mean = self._sum / self._count
        std = np.sqrt(np.maximum(self._sumsq / self._count - mean**2, 0.0))
        return {"mean": mean.tolist(), "std": np.maximum(std, 1e-6).tolist(),
                "min": self._min.tolist(), "max": self._max.tolist(), "count": int(self._count)}

    def close(self, extra_meta: dict | None = None) -> Path:
        for f in self.files.values():
            f.close()
        if self.n == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise DatasetError("no steps to write")
        emb = self.emb
        meta = {
            "format": FORMAT, "version": VERSION, "complete": True,
            "embodiment": emb.to_dict(), "name": emb.name,
            "action_dim": emb.action_dim, "action_hz": emb.action_hz, "stride": emb.stride,
            "image_size": [self.h, self.w], "n_steps": self.n, "episodes": self.episodes,
            "state_keys": list(self.state_keys), "stats": self.stats(), "source": self.source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "valid_steps": None,
        }
        meta.update(extra_meta or {})
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if self.out.exists():
            trash = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            self.out.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        self.tmp.rename(self.out)
        self.closed = True
        return self.out

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Window:
    frames: np.ndarray  # (T, H, W, 3) uint8
    actions: np.ndarray  # (T, stride, action_dim) float32
    action_mask: np.ndarray  # (T, stride) bool
    frame_mask: np.ndarray  # (T,) bool

    def steps(self, n: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """The first n steps as a world model observes them: (frame, the chunk that led into it;
        None for the window's first frame). The one place that pairs a frame with its action."""
        return [(self.frames[t], self.actions[t - 1] if t else None) for t in range(n)]


class Dataset:
    """Read-only, memory-mapped view of a dataset directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{self.path}: not a dataset (no meta.json); was it written completely?")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{meta_path}: corrupt metadata ({e})") from None
        if meta.get("format") != FORMAT or not meta.get("complete"):
            raise DatasetError(f"{self.path}: not a complete {FORMAT} dataset")
        if meta.get("version") != VERSION:
            raise DatasetError(f"{self.path}: dataset version {meta.get('version')}, this hma_ros reads {VERSION}")
        self.meta = meta
        self.embodiment = embodiment_from_dict_loose(meta["embodiment"], str(meta_path))
        n, (h, w), s, d = meta["n_steps"], meta["image_size"], meta["stride"], meta["action_dim"]
        shapes = {"frames": (n, h, w, 3), "actions": (n, s, d), "action_mask": (n, s),
                  "frame_mask": (n,), "episode": (n,), "t": (n,), "state": (n, len(meta["state_keys"]))}
        self.arrays: dict[str, np.ndarray] = {}
        for k, (fname, dtype) in _ARRAYS.items():
            if k == "state" and not meta["state_keys"]:
                continue
            fpath = self.path / fname
            expected = int(np.prod(shapes[k])) * np.dtype(dtype).itemsize
            if not fpath.is_file() or fpath.stat().st_size != expected:
                raise DatasetError(f"{fpath}: missing or wrong size (expected {expected} B)")
            self.arrays[k] = np.memmap(fpath, dtype=dtype, mode="r", shape=shapes[k])
        self.episodes = [tuple(e) for e in meta["episodes"]]

    @property
    def name(self) -> str:
        return self.meta["name"]

    def __len__(self) -> int:
        return self.meta["n_steps"]

    @property
    def stats(self) -> dict:
        return self.meta["stats"]

    def valid(self) -> np.ndarray:
        """(N,) bool: a frame and a complete action chunk."""
        return self.arrays["frame_mask"] & self.arrays["action_mask"].all(axis=1)

    def window_starts(self, T: int, episodes: list[int] | None = None) -> np.ndarray:
        """Start indices of windows of T consecutive valid steps inside one episode."""
        valid = self.valid()
        starts = []
        for e in (episodes if episodes is not None else range(len(self.episodes))):
            a, n = self.episodes[e]
            v = valid[a:a + n].astype(np.int32)
            if n < T:
                continue
            c = np.concatenate([[0], np.cumsum(v)])
            ok = (c[T:] - c[:-T]) == T
            starts.extend((a + np.flatnonzero(ok)).tolist())
        return np.asarray(starts, dtype=np.int64)

    def window(self, start: int, T: int) -> Window:
        sl = slice(start, start + T)
        a = self.arrays
        return Window(np.array(a["frames"][sl]), np.array(a["actions"][sl]),
                      np.array(a["action_mask"][sl]), np.array(a["frame_mask"][sl]))

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
        """Train/val episode ids: a seeded shuffle, at least one val episode when there are 2+."""
        e = len(self.episodes)
        order = np.random.default_rng(seed).permutation(e)
        n_val = min(e - 1, max(1, round(val_fraction * e))) if e > 1 else 0
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def merged(parts: list[Dataset]) -> Dataset:
    """Several datasets of one embodiment (e.g. `data/sim/pusht` and more episodes in
    `data/more/pusht`) as one: arrays concatenated in memory, episodes renumbered after each
    other, action statistics pooled. DatasetError when their shapes or embodiments differ."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    keys = ("name", "stride", "action_dim", "image_size", "state_keys")
    for p in parts[1:]:
        diff = [k for k in keys if p.meta.get(k) != first.meta.get(k)]
        if diff:
            raise DatasetError(f"{p.path} and {first.path} are both {first.name!r} datasets but differ in "
                               f"{', '.join(diff)}; convert them alike (same embodiment config) to train on both")
    out = object.__new__(Dataset)
    out.path = first.path
    out.embodiment = first.embodiment
    out.parts = list(parts)  # the folders, in order (a token cache keeps one entry per folder)
    out.arrays = {k: np.concatenate([np.asarray(p.arrays[k]) for p in parts]) for k in first.arrays}
    out.episodes, offset = [], 0
    for p in parts:
        out.episodes += [(a + offset, n) for a, n in p.episodes]
        offset += len(p)
    st = [p.stats for p in parts]
    count = np.array([s.get("count", 1) for s in st], float)
    w = count / count.sum()
    mean = sum(wi * np.asarray(s["mean"]) for wi, s in zip(w, st, strict=True))
    var = sum(wi * (np.asarray(s["std"]) ** 2 + (np.asarray(s["mean"]) - mean) ** 2) for wi, s in zip(w, st, strict=True))
    stats = {"mean": mean.tolist(), "std": np.sqrt(var).tolist(),
             "min": np.min([s["min"] for s in st], 0).tolist(), "max": np.max([s["max"] for s in st], 0).tolist(),
             "count": int(count.sum())}
    out.meta = {**first.meta, "n_steps": offset, "episodes": [list(e) for e in out.episodes], "stats": stats,
                "source": " + ".join(str(p.path) for p in parts)}
    if all("policies" in p.meta for p in parts):
        out.meta["policies"] = [k for p in parts for k in p.meta["policies"]]
    return out


def embodiment_from_dict_loose(d: dict, where: str) -> Embodiment:
    """Rebuild an Embodiment from its to_dict() form (as stored in datasets/checkpoints)."""
    fields = dict(d)
    fields["image_size"] = tuple(fields["image_size"])
    fields["joint_names"] = tuple(fields.get("joint_names", ()))
    for k in ("action_low", "action_high"):
        if fields.get(k) is not None:
            fields[k] = tuple(fields[k])
    try:
        return Embodiment(**fields, source_file=where)
    except TypeError as e:
        raise DatasetError(f"{where}: embodiment record does not match this hma_ros ({e})") from None


class MixtureSampler:
    """Batches of T-step windows; each batch from ONE embodiment, chosen with probability
    proportional to (n_i / N) ** (1 / temperature) (temperature 3 as in the paper), or with
    the given `shares` ({name: weight}, normalized; every dataset needs one)."""

    def __init__(self, datasets: dict[str, Dataset], T: int, batch_size: int,
                 episodes: dict[str, list[int]] | None = None, temperature: float = 3.0, seed: int = 0,
                 shares: dict[str, float] | None = None):
        self.datasets, self.T, self.batch_size = datasets, T, batch_size
        self.starts = {k: ds.window_starts(T, (episodes or {}).get(k)) for k, ds in datasets.items()}
        empty = [k for k, s in self.starts.items() if len(s) == 0]
        if empty:
            raise DatasetError(f"no window of {T} valid steps in: {', '.join(empty)}")
        self.names = list(datasets)
        if shares:
            if set(shares) != set(self.names) or any(not v > 0 for v in shares.values()):
                raise DatasetError(f"mixture shares {shares} must give a weight > 0 to each of "
                                   f"{', '.join(self.names)} and to nothing else")
            w = np.array([shares[k] for k in self.names], float)
        else:
            n = np.array([len(self.starts[k]) for k in self.names], float)
            w = (n / n.sum()) ** (1.0 / temperature)
        self.weights = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[str, list[Window]]:
        name = self.names[self.rng.choice(len(self.names), p=self.weights)]
        ds, starts = self.datasets[name], self.starts[name]
        idx = self.rng.choice(starts, size=self.batch_size, replace=len(starts) < self.batch_size)
        return name, [ds.window(int(i), self.T) for i in idx]


def find_datasets(paths) -> dict[str, Dataset]:
    """Datasets by embodiment name from folders that are datasets or hold datasets
    (`data/sim` or `data/sim/pusht`); several of one embodiment are merged (`merged`), in the
    order given. DatasetError names a folder with none."""
    found: dict[str, list[Dataset]] = {}
    for p in paths:
        p = Path(p)
        dirs = [p] if (p / "meta.json").is_file() else sorted(d.parent for d in p.glob("*/meta.json"))
        if not dirs:
            raise DatasetError(f"{p}: no dataset (no meta.json here or in its subfolders); run `hma gen-data` "
                               "or `hma bag2data` first")
        for d in dirs:
            ds = Dataset(d)
            if any(x.path.resolve() == ds.path.resolve() for x in found.get(ds.name, [])):
                continue  # the same folder named twice
            found.setdefault(ds.name, []).append(ds)
    return {name: merged(parts) for name, parts in found.items()}
