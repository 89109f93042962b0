"""The 2 Hz step: the ONE implementation that turns timestamped frames and action samples into
model steps, used live (nodes, message by message) and offline (bags, simulators).

Contract (docs/architecture.md, "The 2 Hz step"):
- ticks t_k = t_0 + k * period (period 0.5 s), t_0 = the episode's first frame stamp;
- stride = max(1, floor(action_hz * period + 0.5)) action samples per step, on the grid
  t_k + i * period / stride, by zero-order hold (last sample at or before the grid point) or
  linear interpolation; a grid point whose samples are further apart than `action_hold` is
  invalid (mask False, value 0), never silently filled;
- step k = (the frame nearest t_k within `frame_tolerance`, the action chunk over
  [t_k, t_k + period)); it is complete once samples at or past t_k + period have arrived on the
  action stream and a frame at or past t_k + tolerance on the camera stream (so no nearer frame
  can still come). A stream silent for longer than `max_gap` while the other runs on is taken as
  a gap, not waited for; a gap longer than `max_gap` ends the episode;
- stamps are header stamps; a stamp more than `backjump` seconds behind its stream resets
  everything (bag loop, simulator reset); exact duplicates are dropped; samples arriving up to
  `reorder_slack` late are placed in order;
- a robot at rest is a robot too: with `at_rest` set, a command-driven robot whose newest command
  is older than `command_timeout` (or that never sent one) is holding still, and `push_hold`
  samples (e.g. its joint states) enter the action stream as the hold action -- the measured
  joint positions ("joints"), the last command ("last") or zeros ("zero"). Inside an active
  stream (commands younger than `command_timeout`) hold samples are ignored, so a gap there
  stays a gap (invalid), never silently filled. Decided here, for live and offline alike.
Because completion depends only on stamps, the same recording gives the same steps whether it is
pushed message by message in any interleaving (lag between streams < max_gap) or all at once.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Stamps near 1.7e9 s carry ~2.4e-7 s of float64 resolution and bags round them to ns: compare
# times with a microsecond of slack, never exactly.
EPS = 1e-6


def stride_for(action_hz: float, period: float = 0.5) -> int:
    """Action samples per model step: max(1, floor(hz * period + 0.5))."""
    return max(1, int(math.floor(action_hz * period + 0.5)))


def plan_chunks(times, values, start: float, steps: int, stride: int, period: float = 0.5) -> np.ndarray:
    """A timed command plan (a trajectory: sample times (N,), ascending, and commands (N, dim))
    as `steps` chunks of `stride` commands from `start` on the step grid: chunk k holds the
    commands at start + k * period + i * period / stride, each the last sample at or before that
    instant (zero-order hold, as the chunker's). Instants before the plan's first sample take the
    first, after its last the last. Returns (steps, stride, dim)."""
    times, values = np.asarray(times, float), np.asarray(values, float)
    if times.ndim != 1 or values.ndim != 2 or len(times) != len(values) or not len(times):
        raise ValueError(f"a plan needs N sample times and N x dim commands, got {times.shape} and {values.shape}")
    if np.any(np.diff(times) < 0):
        raise ValueError("a plan's sample times must not decrease")
    grid = start + np.arange(steps * stride) * (period / stride)
    idx = np.clip(np.searchsorted(times, grid + EPS, side="right") - 1, 0, len(times) - 1)
    return values[idx].reshape(steps, stride, values.shape[1])


REST_MODES = ("none", "joints", "last", "zero")


@dataclass(frozen=True)
class ChunkerConfig:
    action_hz: float
    action_dim: int
    period: float = 0.5
    interpolation: str = "zoh"  # "zoh" | "linear"
    frame_tolerance: float = 0.25
    max_gap: float = 2.0
    action_hold: float | None = None  # default: 2.5 native sample periods
    reorder_slack: float = 0.0
    backjump: float = 1.0
    transform: str = "none"  # "none" | "delta" (differences of the resampled values)
    max_buffer: int = 200_000
    at_rest: str = "none"  # robot at rest: "none" | "joints" | "last" | "zero" (see push_hold)
    command_timeout: float = 0.5  # s: commands older than this count as none (the robot holds)

    def __post_init__(self):
        if not (self.action_hz > 0 and math.isfinite(self.action_hz)):
            raise ValueError(f"action_hz must be a positive number, got {self.action_hz}")
        if self.action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {self.action_dim}")
        if self.interpolation not in ("zoh", "linear"):
            raise ValueError(f"interpolation must be 'zoh' or 'linear', got {self.interpolation!r}")
        if self.transform not in ("none", "delta"):
            raise ValueError(f"transform must be 'none' or 'delta', got {self.transform!r}")
        if not 0 < self.frame_tolerance <= self.period:
            raise ValueError(f"frame_tolerance must be in (0, {self.period}], got {self.frame_tolerance}")
        if self.at_rest not in REST_MODES:
            raise ValueError(f"at_rest must be one of {REST_MODES}, got {self.at_rest!r}")
        if not (self.command_timeout > 0 and math.isfinite(self.command_timeout)):
            raise ValueError(f"command_timeout must be a positive number of seconds, got {self.command_timeout}")

    @property
    def stride(self) -> int:
        return stride_for(self.action_hz, self.period)

    @property
    def hold(self) -> float:
        return self.action_hold if self.action_hold is not None else 2.5 / self.action_hz


@dataclass
class Step:
    """One completed 2 Hz step."""

    episode: int
    index: int  # k within the episode
    t: float  # tick time t_k (s)
    frame: Any  # the payload pushed with the nearest frame (None if no frame within tolerance)
    frame_t: float | None
    extra: Any  # the `extra` pushed with that frame (e.g. simulator state)
    actions: np.ndarray  # (stride, action_dim) float32; zeros where invalid
    action_mask: np.ndarray  # (stride,) bool

    @property
    def frame_valid(self) -> bool:
        return self.frame is not None

    @property
    def valid(self) -> bool:
        return self.frame is not None and bool(self.action_mask.all())


@dataclass
class ChunkerStats:
    frames: int = 0
    actions: int = 0
    steps: int = 0
    invalid_steps: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0  # non-finite stamps or values, wrong dimension
    resets: int = 0
    episodes: int = 0
    overflow: int = 0
    holds: int = 0  # hold samples that entered the action stream (robot at rest)
    messages: list[str] = field(default_factory=list)

    def note(self, msg: str) -> None:
        self.messages.append(msg)
        del self.messages[:-20]


class Chunker:
    """Streaming 2 Hz chunker: push frames and action samples, pop completed steps."""

    def __init__(self, config: ChunkerConfig):
        self.cfg = config
        self.stats = ChunkerStats()
        self._reset_state()
        self._episode = -1

    # ------------------------------------------------------------------ input
    def _reset_state(self) -> None:
        self._ft: list[float] = []  # frame stamps, sorted
        self._fp: list[tuple[Any, Any]] = []  # (payload, extra)
        self._at: list[float] = []  # action stamps, sorted
        self._av: list[np.ndarray] = []
        self._hold_ts: set[float] = set()  # stamps in _at that are hold samples (commands replace them)
        self._wf = -math.inf  # newest frame stamp seen
        self._wa = -math.inf  # newest action stamp seen
        self._wc = -math.inf  # newest real command stamp (hold samples do not count)
        self._last_cmd: np.ndarray | None = None
        self._t0: float | None = None
        self._k = 0
        self._floor = -math.inf  # samples before this belong to a finished episode
        self._new_episode = True

    def reset(self) -> None:
        """Forget everything buffered (e.g. on a sim reset); the next frame starts an episode."""
        self._reset_state()
        self._new_episode = True

    def _check_time(self, t: float, watermark: float, stream: str) -> bool:
        """True if t may be inserted; handles backwards jumps (reset) and late samples."""
        if not math.isfinite(t):
            self.stats.rejected += 1
            self.stats.note(f"{stream}: non-finite stamp {t}")
            return False
        if t < watermark - self.cfg.backjump:
            self.stats.resets += 1
            self.stats.note(f"{stream}: time went backwards by {watermark - t:.3f} s: buffers reset")
            self.reset()
            return True
        if t < watermark - self.cfg.reorder_slack or t < self._floor:
            self.stats.late += 1
            return False
        return True

    def push_frame(self, t: float, frame: Any, extra: Any = None) -> list[Step]:
        """Add a camera frame stamped t (s); returns the steps it completes."""
        t = float(t)
        if not self._check_time(t, self._wf, "frame"):
            return []
        i = bisect.bisect_left(self._ft, t)
        if i < len(self._ft) and self._ft[i] == t:
            self.stats.duplicates += 1
            return []
        self._ft.insert(i, t)
        self._fp.insert(i, (frame, extra))
        self._wf = max(self._wf, t)
        self.stats.frames += 1
        return self._advance()

    def push_action(self, t: float, action) -> list[Step]:
        """Add one native action (or joint) sample stamped t (s); returns completed steps."""
        t = float(t)
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape[0] != self.cfg.action_dim or not np.all(np.isfinite(a)):
            self.stats.rejected += 1
            self.stats.note(f"action at {t:.3f}: expected {self.cfg.action_dim} finite values, got {a.tolist()[:8]}")
            return []
        self._yield_holds(t)
        if not self._check_time(t, self._wa, "action"):
            return []
        self._wc, self._last_cmd = max(self._wc, t), a
        return self._insert_action(t, a)

    def _yield_holds(self, t: float) -> None:
        """Commands win over hold samples: when every buffered sample at or after t is a hold
        (a robot that just started moving, hold and command stamped on different paths), they
        are dropped so the command takes their place instead of arriving 'late'."""
        if not self._hold_ts:
            return
        i = bisect.bisect_left(self._at, t - EPS)
        if i == len(self._at) or not all(s in self._hold_ts for s in self._at[i:]):
            return
        for s in self._at[i:]:
            self._hold_ts.discard(s)
        del self._at[i:], self._av[i:]
        self._wa = self._at[-1] if self._at else t

    def push_hold(self, t: float, joints=None) -> list[Step]:
        """A hold sample stamped t (s), e.g. each joint state of a command-driven robot. When the
        newest command is older than `command_timeout` (or none came yet) the robot is at rest,
        and the hold action enters the action stream at t: `joints` itself ("joints": the
        measured positions, in action units), the last command ("last"; nothing before the
        first command) or zeros ("zero"). Ignored while commands are fresh and with hold "none"."""
        cfg = self.cfg
        t = float(t)
        if cfg.at_rest == "none" or not math.isfinite(t) or t - self._wc <= cfg.command_timeout + EPS:
            return []
        if cfg.at_rest == "joints":
            if joints is None:
                return []
            a = np.asarray(joints, dtype=np.float64).reshape(-1)
            if a.shape[0] != cfg.action_dim or not np.all(np.isfinite(a)):
                self.stats.rejected += 1
                self.stats.note(f"hold at {t:.3f}: expected {cfg.action_dim} finite joint values, got {a.tolist()[:8]}")
                return []
        elif cfg.at_rest == "last":
            if self._last_cmd is None:
                return []
            a = self._last_cmd
        else:
            a = np.zeros(cfg.action_dim)
        if t < self._wa - cfg.backjump:  # time went backwards: the same reset as any stream
            self._check_time(t, self._wa, "hold")
        elif t <= self._wa + EPS:  # older than the stream's newest sample: nothing to hold
            return []
        self.stats.holds += 1
        self._hold_ts.add(t)
        return self._insert_action(t, a)

    def _insert_action(self, t: float, a: np.ndarray) -> list[Step]:
        i = bisect.bisect_left(self._at, t)
        if i < len(self._at) and self._at[i] == t:
            self.stats.duplicates += 1
            return []
        self._at.insert(i, t)
        self._av.insert(i, a)
        self._wa = max(self._wa, t)
        self.stats.actions += 1
        if len(self._at) > self.cfg.max_buffer:
            self.stats.overflow += 1
            del self._at[0], self._av[0]
            self._prune_holds()
        return self._advance()

    def _prune_holds(self) -> None:
        if self._hold_ts:
            first = self._at[0] if self._at else math.inf
            self._hold_ts = {s for s in self._hold_ts if s >= first}

    def flush(self) -> list[Step]:
        """End of stream: emit every step whose action window is covered; then forget all."""
        steps = self._advance(final=True)
        self.reset()
        return steps

    # ------------------------------------------------------------------ core
    def _advance(self, final: bool = False) -> list[Step]:
        cfg = self.cfg
        out: list[Step] = []
        while True:
            if self._t0 is None:
                i = bisect.bisect_left(self._ft, self._floor)
                if i >= len(self._ft):
                    self._prune_waiting()
                    return out
                t_first = self._ft[i]
                if not final and self._wf < t_first + cfg.reorder_slack:
                    return out
                self._t0, self._k = t_first, 0
            tk = self._t0 + self._k * cfg.period
            # a stream silent for longer than max_gap while the other runs on is a gap, not a lag
            ewf = math.inf if final else max(self._wf, self._wa - cfg.max_gap)
            ewa = max(self._wa, self._wf - cfg.max_gap) if not final else self._wa
            if ewa < tk + cfg.period + cfg.reorder_slack or ewf < tk + cfg.frame_tolerance + cfg.reorder_slack:
                return out
            frame_i = self._nearest_frame(tk)
            if self._episode_break(tk, frame_i):
                self._t0 = None
                self._floor = tk + 1e-6
                self._new_episode = True
                self._prune(tk)
                continue
            step = self._make_step(tk, frame_i)
            out.append(step)
            self._k += 1
            self._prune(tk + cfg.period)

    def _nearest_frame(self, tk: float) -> int | None:
        tol = self.cfg.frame_tolerance
        lo = bisect.bisect_left(self._ft, tk - tol - EPS)
        hi = bisect.bisect_right(self._ft, tk + tol + EPS)
        best, best_d = None, math.inf
        for i in range(lo, hi):
            d = abs(self._ft[i] - tk)
            if d < best_d - 1e-12:  # ties go to the earlier frame
                best, best_d = i, d
        return best

    def _episode_break(self, tk: float, frame_i: int | None) -> bool:
        """Does step k fall into a gap longer than max_gap (in either stream)? Uses the sample
        after the gap when it is already known, so an episode ends at its last complete step."""
        cfg = self.cfg
        if frame_i is None:
            j = bisect.bisect_right(self._ft, tk) - 1  # newest frame at or before t_k
            last = self._ft[j] if j >= 0 else -math.inf
            nxt = self._ft[j + 1] if j + 1 < len(self._ft) else None
            gap = (nxt - last) if nxt is not None else (tk - last)
            if gap > cfg.max_gap:
                self.stats.note(f"camera gap of {gap:.2f} s at t={tk:.3f}: new episode")
                return True
        end = tk + cfg.period
        j = bisect.bisect_right(self._at, end - cfg.period / cfg.stride + EPS) - 1  # covers the last grid point?
        last_a = self._at[j] if j >= 0 else -math.inf
        nxt_a = self._at[j + 1] if j + 1 < len(self._at) else None
        gap_a = (nxt_a - last_a) if nxt_a is not None else (end - last_a)
        if gap_a > cfg.max_gap and end - cfg.period / cfg.stride - last_a > cfg.hold:
            self.stats.note(f"action gap of {gap_a:.2f} s at t={tk:.3f}: new episode")
            return True
        return False

    def _make_step(self, tk: float, frame_i: int | None) -> Step:
        cfg = self.cfg
        n = cfg.stride + (1 if cfg.transform == "delta" else 0)
        grid = tk + np.arange(n) * (cfg.period / cfg.stride)
        values = np.zeros((n, cfg.action_dim), np.float64)
        mask = np.zeros(n, bool)
        at = self._at
        for g_i, g in enumerate(grid):
            j = bisect.bisect_right(at, g + EPS) - 1  # last sample at or before g
            if j < 0:
                continue
            if cfg.interpolation == "zoh":
                if g - at[j] <= cfg.hold + EPS:
                    values[g_i], mask[g_i] = self._av[j], True
            else:
                if at[j] >= g - EPS:
                    values[g_i], mask[g_i] = self._av[j], True
                elif j + 1 < len(at) and at[j + 1] - at[j] <= cfg.hold + EPS:
                    w = (g - at[j]) / (at[j + 1] - at[j])
                    values[g_i] = (1 - w) * self._av[j] + w * self._av[j + 1]
                    mask[g_i] = True
        if cfg.transform == "delta":
            values = np.diff(values, axis=0)
            mask = mask[1:] & mask[:-1]
        values[~mask] = 0.0
        if self._new_episode:
            self._episode += 1
            self.stats.episodes += 1
            self._new_episode = False
        frame, extra, frame_t = (None, None, None)
        if frame_i is not None:
            (frame, extra), frame_t = self._fp[frame_i], self._ft[frame_i]
        step = Step(self._episode, self._k, tk, frame, frame_t, extra,
                    values.astype(np.float32), mask)
        self.stats.steps += 1
        if not step.valid:
            self.stats.invalid_steps += 1
        return step

    def _prune(self, t_next: float) -> None:
        """Drop what no later step can use; keep the newest sample before each boundary."""
        cfg = self.cfg
        fi = bisect.bisect_left(self._ft, t_next - cfg.frame_tolerance - EPS) - 1
        if fi > 0:
            del self._ft[:fi], self._fp[:fi]
        ai = bisect.bisect_left(self._at, t_next - max(cfg.hold, cfg.max_gap) - EPS) - 1
        if ai > 0:
            del self._at[:ai], self._av[:ai]
            self._prune_holds()

    def _prune_waiting(self) -> None:
        """No episode running: keep only recent actions (they may hold into the next tick)."""
        horizon = self._wa - self.cfg.max_gap - self.cfg.hold
        ai = bisect.bisect_left(self._at, horizon) - 1
        if ai > 0:
            del self._at[:ai], self._av[:ai]
            self._prune_holds()
        fi = bisect.bisect_left(self._ft, self._floor)
        if fi > 0:
            del self._ft[:fi], self._fp[:fi]


def chunk_recording(config: ChunkerConfig, frames, actions) -> list[Step]:
    """Offline convenience: all frames [(t, payload[, extra])] and actions [(t, vec)] at once,
    merged by stamp (frames first on equal stamps), through the same streaming chunker."""
    events = [(float(f[0]), 0, i) for i, f in enumerate(frames)] + \
             [(float(a[0]), 1, i) for i, a in enumerate(actions)]
    events.sort()
    ch = Chunker(config)
    out: list[Step] = []
    for t, kind, i in events:
        if kind == 0:
            f = frames[i]
            out += ch.push_frame(t, f[1], f[2] if len(f) > 2 else None)
        else:
            out += ch.push_action(t, actions[i][1])
    return out + ch.flush()
