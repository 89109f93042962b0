"""Closed-loop policy evaluation in the real simulator (the library behind `hma policy-eval`):
a checkpoint's act() against the dataset's smooth random policy (and the scripted controller).

Each episode: reset the simulator with a seed that gen-data never uses (from 1,000,000 up),
then at every 2 Hz step render the camera frame, `observe()` it with the chunk that led into
it, ask `act()` for the next chunk (stride actions at the native command rate) and apply it
action by action. PushT is scored by gym-pusht's own `coverage` (success = coverage > 95%), as
max over the episode and at the end; other simulators report their state values at the end.
"""

from __future__ import annotations

import time

import numpy as np

SEED_BASE = 1_000_000  # gen-data seeds are seed * 100_003 + episode, far below this
SCORES = {"pusht": ("coverage_max", "coverage_end", "success_max"),  # what each simulator is scored by
          "reacher": ("finger_to_target_end",), "cheetah": ("speed_end",),
          "manipulator": ("ball_x_end", "ball_z_end")}


class PolicyEvalError(ValueError):
    """A policy evaluation that cannot run as asked (the message says why)."""


def run_episode(sim, spec, stride: int, steps: int, seed: int, choose, wm=None) -> tuple[dict, list]:
    """One closed-loop episode. choose() -> (stride, dim) chunk; with wm, observe() every step first.
    Returns (summary of sim.state() values, frames)."""
    sim.reset(seed)
    if wm is not None:
        wm.reset(seed)
    chunk_in = None
    states, frames = [], []
    for _ in range(steps):
        frame = spec.prepare(sim.render())
        frames.append(frame)
        if wm is not None:
            wm.observe(frame, chunk_in)
        chunk = np.asarray(choose(), dtype=np.float64)
        for a in chunk:
            sim.step(sim.clip(a))
            states.append(sim.state())
        chunk_in = np.asarray([sim.clip(a) for a in chunk], dtype=np.float32)
    keys = states[0].keys()
    out = {f"{k}_end": float(states[-1][k]) for k in keys}
    out.update({f"{k}_max": float(max(s[k] for s in states)) for k in keys})
    return out, frames


def summarize(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: {"mean": float(np.mean([r[k] for r in rows])),
                "sem": float(np.std([r[k] for r in rows]) / np.sqrt(len(rows)))} for k in keys}


def open_world(ckpt: str, embodiment: str, temperature: float = 0.0, mask_steps: int = 2, mask_order: str = "random"):
    """(world model, embodiment, its real simulator) for closed-loop evaluation, with clear errors
    when the checkpoint lacks the embodiment or the simulator does not match its stem.
    temperature / mask_steps / mask_order: how the model draws each imagined frame's tokens."""
    from hma_ros.data.dataset import DatasetError, embodiment_from_dict_loose
    from hma_ros.data.sims import make_sim
    from hma_ros.model.checkpoint import CheckpointError
    from hma_ros.runtime.world_model import WorldModel

    try:
        wm = WorldModel.load(ckpt, embodiment, temperature=temperature, mask_steps=mask_steps, mask_order=mask_order)
    except (CheckpointError, ValueError) as e:
        raise PolicyEvalError(str(e)) from None
    try:
        emb = embodiment_from_dict_loose(wm.config["embodiments"][embodiment]["embodiment"], f"{ckpt} config")
    except (DatasetError, KeyError) as e:
        raise PolicyEvalError(f"{ckpt}: no usable embodiment record for {embodiment} ({e})") from None
    if not emb.sim:
        raise PolicyEvalError(f"{embodiment} has no simulator (its embodiment config names no `sim`)")
    sim = make_sim(emb.sim)
    if abs(sim.info.control_hz - emb.action_hz) > 1e-6 or sim.info.action_dim != wm.action_dim:
        raise PolicyEvalError(f"{emb.sim} runs at {sim.info.control_hz} Hz x {sim.info.action_dim}-D, the "
                              f"checkpoint's {embodiment} stem expects {emb.action_hz} Hz x {wm.action_dim}-D")
    return wm, emb, sim


def evaluate_policies(ckpt: str, embodiment: str = "pusht", episodes: int = 50, seconds: float = 30.0,
                      temperature: float = 0.0, act_samples: int = 1, scripted: bool = False,
                      seed: int = 0) -> tuple[dict, list]:
    """Every arm on the same seeded episodes. Returns (results, the first model episode's frames)."""
    from tqdm import tqdm

    from hma_ros.data.sims import Policy, SmoothRandom

    wm, emb, sim = open_world(ckpt, embodiment, temperature)
    stride = wm.stride
    steps = int(round(seconds * emb.action_hz / stride))
    spec = emb.image_spec
    arms: dict[str, list[dict]] = {"model act()": [], "random": []}
    if scripted:
        arms["scripted"] = []
    ms = []
    t0 = time.time()
    gif_frames = []
    for arm in arms:
        rng = np.random.default_rng(seed)
        for ep in tqdm(range(episodes), desc=arm, unit="episode"):
            ep_seed = SEED_BASE + seed * 10_000 + ep
            if arm == "model act()":
                def choose():
                    t = time.perf_counter()
                    c = wm.act(samples=act_samples)
                    ms.append(1e3 * (time.perf_counter() - t))
                    return c
                row, frames = run_episode(sim, spec, stride, steps, ep_seed, choose, wm)
                if ep == 0:
                    gif_frames = frames
            else:
                pol = SmoothRandom(sim.info, rng) if arm == "random" else Policy(sim, "expert", rng)
                row, _ = run_episode(sim, spec, stride, steps, ep_seed, lambda pol=pol: [pol() for _ in range(stride)])
            arms[arm].append(row)
    sim.close()
    results = {"checkpoint": str(ckpt), "embodiment": embodiment, "episodes": episodes,
               "temperature": temperature, "act_samples": act_samples,
               "seconds": seconds, "seeds": f"{SEED_BASE + seed * 10_000}..+{episodes - 1}",
               "act_ms_p50": float(np.percentile(ms, 50)) if ms else None,
               "wall_s": round(time.time() - t0, 1),
               "arms": {arm: summarize(rows) for arm, rows in arms.items()}}
    results["scored_by"] = [k for k in SCORES.get(emb.sim, ()) if k in arms["random"][0]] or list(arms["random"][0])
    return results, gif_frames


def format_policy_table(results: dict) -> str:
    keys = results["scored_by"]
    lines = [f"{results['embodiment']}: {results['episodes']} episodes of {results['seconds']:g} s per arm "
             "(mean ± s.e.m.)", "| arm | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for arm, s in results["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['sem']:.3f}" for k in keys) + " |")
    lines.append(f"act() p50 {results['act_ms_p50']:.1f} ms; {results['wall_s']} s")
    return "\n".join(lines)
