"""Simulator rollouts recorded the way a robot records: camera frames at the camera rate,
joint states and commands at the native command rate, each with its own stamp. The same
messages go to the shared Chunker (direct dataset) and, optionally, to a rosbag2."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hma_ros.data.chunker import Chunker, Step
from hma_ros.data.embodiment import Embodiment
from hma_ros.data.sims import Policy, Sim

EPISODE_SPACING = 1000.0  # s between episode start stamps: far more than any max_gap


@dataclass
class Event:
    t: float
    kind: str  # "frame" | "joints" | "command"
    value: object
    extra: dict | None = None


def episode_events(sim: Sim, policy: Policy, seconds: float, camera_hz: float, t0: float,
                   seed: int) -> Iterator[Event]:
    """One episode as time-ordered messages. At each control instant t_i: joint states, then
    the command applied from t_i, then a camera frame if one is due (frames fire at the first
    control instant at or after each camera period, like a free-running camera)."""
    sim.reset(seed)
    hz = sim.info.control_hz
    n = int(round(seconds * hz))
    next_frame = 0
    for i in range(n + 1):
        t = t0 + i / hz
        yield Event(t, "joints", sim.joint_positions())
        action = policy()
        yield Event(t, "command", action)  # the last one closes the final step's window
        if i / hz >= next_frame / camera_hz - 1e-9:
            yield Event(t, "frame", sim.render(), sim.state())
            next_frame += 1
        if i < n:
            sim.step(action)


def events_to_steps(chunker: Chunker, emb: Embodiment, ev: Event) -> list[Step]:
    """Feed one message to the chunker as the embodiment's action source says."""
    if ev.kind == "frame":
        return chunker.push_frame(ev.t, emb.image_spec.prepare(ev.value), ev.extra)
    if ev.kind == "command" and emb.action_source == "command":
        return chunker.push_action(ev.t, ev.value)
    if ev.kind == "joints" and emb.action_source != "command":
        return chunker.push_action(ev.t, ev.value)
    if ev.kind == "joints":  # a command-driven robot at rest holds (Chunker.push_hold), as live
        return chunker.push_hold(ev.t, ev.value)
    return []


DEFAULT_MIX = {"expert": 0.4, "noisy": 0.3, "random": 0.3}


def policy_schedule(episodes: int, seed: int, mix: dict[str, float] | None = None) -> list[str]:
    """Which policy drives each episode, drawn in the given proportions ({kind: share}, kinds
    from `Policy.KINDS`; default expert 0.4 / noisy 0.3 / random 0.3)."""
    mix = dict(mix or DEFAULT_MIX)
    bad = [k for k in mix if k not in Policy.KINDS]
    if bad or not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"policy mix {mix}: give kinds from {', '.join(Policy.KINDS)} with shares >= 0 "
                         f"and a positive total")
    rng = np.random.default_rng(seed)
    kinds = np.array(list(mix))
    p = np.asarray(list(mix.values()), float)
    return list(kinds[rng.choice(len(kinds), size=episodes, p=p / p.sum())])
