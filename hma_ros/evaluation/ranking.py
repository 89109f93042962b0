"""Rank policies in the learned simulator, labelled automatically (paper Sec. 5.3, Tab. 5).

Every policy runs the same seeded episodes twice: in gym-pusht, and in the world model used as
a simulator. Both start after the same real prefix: the robot standing still for the model's
prompt length (4 frames, 1.5 s), so the learned simulator gets real initial frames and nothing
a policy did. Then each 2 Hz step the policy sees the newest frame, answers a chunk of
native-rate commands, and the model imagines the next frame, which becomes the newest. The policies act from camera frames only: they read the agent and
the block off the frame with the PushT judge (`pusht_judge.py`), in both worlds, never from the
simulator's state.

Episodes start with the T off the goal (`off_goal_seeds`: gym-pusht's random start overlaps it
in about a third of seeds, which would score a policy that does nothing). Scores: max coverage
over the episode (gym-pusht's usual score) and success (coverage > 0.95).
Ground-truth episodes are scored by the simulator's own coverage (every native step) and by the
judge on their 2 Hz frames; learned-simulator episodes by the judge on the imagined frames. So
the judge's own bias is visible beside the learned simulator's. Across policies: Pearson,
Spearman and MMRV (mean maximum rank violation, as in SIMPLER) between the per-policy means,
with bootstrap intervals over episodes (each policy's episodes resampled, the same initial
states in both worlds).

Policies of graded quality (`POLICIES`), all reading the judge's estimates off the frame: the
pose-aware pusher (`sims.PushTPosePusher`, which solves the task), the same with Gaussian noise
of growing scale on its commands, gen-data's position-only waypoint pusher, and smooth random
commands; with `bc_policies` also image behaviour-cloning policies (`evaluation/bc.py`, several
training checkpoints), which act from the pixels alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hma_ros.evaluation.policy import SEED_BASE

SUCCESS = 0.95  # gym-pusht's success threshold on coverage


@dataclass
class FramePolicy:
    """A PushT policy that acts from camera frames: the judge estimates the agent and the block
    pose, a scripted controller (`kind`: "pose" = `sims.PushTPosePusher`, which solves the task;
    "waypoint" = `sims.PushTPusher`, gen-data's position-only pusher) plans the chunk's `stride`
    targets (each from where the previous one would put the agent), plus Gaussian noise of
    `noise` world units on every command; kind "random" = smooth random commands that ignore
    the frame."""

    name: str
    kind: str
    noise: float = 0.0
    path: str = ""  # kind "bc": the BC policy's safetensors (hma train-bc)

    def start(self, judge, stride: int, info, rng: np.random.Generator) -> None:
        """A new episode: fresh controller memory and this episode's random stream."""
        from hma_ros.data.sims import PushTPosePusher, PushTPusher, SmoothRandom

        self.judge, self.stride, self.rng = judge, stride, rng
        self.low, self.high = np.asarray(info.action_low, float), np.asarray(info.action_high, float)
        if self.kind == "bc":
            if getattr(self, "_bc", None) is None:
                from hma_ros.evaluation.bc import load_bc

                self._bc = load_bc(self.path)
            if self._bc.config["stride"] != stride:
                raise ValueError(f"{self.path}: a BC policy of {self._bc.config['stride']}-command chunks, "
                                 f"the model steps {stride}")
        elif self.kind == "pose":
            if getattr(self, "_pose", None) is None:
                self._pose = PushTPosePusher()  # owns a small simulator: made once, reset per episode
            self._pose.reset()
            self.controller = self._pose
        elif self.kind == "waypoint":
            self.controller = PushTPusher(float(self.low[0]), float(self.high[0]))
        elif self.kind == "random":
            self.random = SmoothRandom(info, rng)
        else:
            raise ValueError(f"unknown policy kind {self.kind!r}: pose, waypoint, random or bc")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from hma_ros.evaluation.pusht_judge import GOAL_POSE

        if self.kind == "random":
            return np.stack([self.random() for _ in range(self.stride)])
        if self.kind == "bc":  # straight from the pixels, no judge
            chunk = self._bc.act(frame)
            if self.noise:
                chunk = chunk + self.rng.normal(0.0, self.noise, chunk.shape)
            return np.clip(chunk, self.low, self.high)
        est = self.judge.estimate(frame)
        agent, block = est["agent"], est["block"] if self.kind == "pose" else est["block"][:2]
        goal = GOAL_POSE if self.kind == "pose" else GOAL_POSE[:2]
        out = []
        for _ in range(self.stride):
            target = self.controller(agent, block, goal, self.rng)
            agent = target  # where the PD controller takes the agent, roughly
            if self.noise:
                target = target + self.rng.normal(0.0, self.noise, 2)
            out.append(np.clip(target, self.low, self.high))
        return np.stack(out)


POLICIES = (FramePolicy("pose pusher", "pose"), FramePolicy("pose pusher+noise 50", "pose", 50.0),
            FramePolicy("pose pusher+noise 120", "pose", 120.0), FramePolicy("waypoint pusher", "waypoint"),
            FramePolicy("random", "random"))


def still_prefix(sim, spec, stride: int, n: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """n + 1 real 2 Hz steps of the robot standing still (its rest command) before an episode:
    (frame, the chunk that led into it). Both worlds start after them, so the learned simulator
    gets a full prompt of real frames without seeing anything a policy did."""
    steps = [(spec.prepare(sim.render()), None)]
    for _ in range(n):
        chunk = np.repeat(sim.rest_action()[None], stride, 0)
        for a in chunk:
            sim.step(a)
        steps.append((spec.prepare(sim.render()), chunk.astype(np.float32)))
    return steps


def real_episode(sim, spec, policy: FramePolicy, steps: int) -> dict:
    """One episode in the simulator from its current state. Returns the 2 Hz frames (steps + 1)
    and the simulator's coverage at every native step."""
    frames, cov = [], [sim.state()["coverage"]]
    for _ in range(steps):
        frame = spec.prepare(sim.render())
        frames.append(frame)
        for a in policy(frame):
            sim.step(sim.clip(a))
            cov.append(sim.state()["coverage"])
    frames.append(spec.prepare(sim.render()))
    return {"frames": np.stack(frames), "coverage": np.asarray(cov)}


def learned_episode(wm, prefix: list, policy: FramePolicy, steps: int, seed: int, loop: str = "pixels") -> np.ndarray:
    """One episode in the world model after observing the real prefix steps [(frame, chunk)]:
    the 2 Hz frames (steps + 1, the first = the prefix's last, real). loop: see
    `runtime.synth.closed_loop`."""
    from hma_ros.runtime.synth import closed_loop

    return closed_loop(wm, prefix, policy, steps, seed, loop)


# ----------------------------------------------------------------------------- statistics
def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(_ranks(x), _ranks(y))


def mmrv(real: np.ndarray, sim: np.ndarray) -> float:
    """Mean maximum rank violation (SIMPLER, Li et al. 2024): for each policy, the largest real
    score gap to a policy the simulator orders the other way; averaged over policies. 0 when the
    simulator orders every pair as reality does; in the score's units otherwise."""
    real, sim = np.asarray(real, float), np.asarray(sim, float)
    n = len(real)
    worst = [max((abs(real[i] - real[j]) for j in range(n)
                  if (real[i] < real[j]) != (sim[i] < sim[j])), default=0.0) for i in range(n)]
    return float(np.mean(worst))


def score_error(real: np.ndarray, sim: np.ndarray) -> float:
    """Mean absolute difference between the simulator's and reality's per-policy scores, in the
    score's units: how far off a user reading the learned simulator's numbers is. Correlations are
    blind to it (a simulator that adds 0.2 to every policy ranks perfectly)."""
    return float(np.mean(np.abs(np.asarray(sim, float) - np.asarray(real, float))))


def agreement(real: np.ndarray, sim: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """real, sim: (policies, episodes) per-episode scores, episodes paired by initial state.
    Pearson, Spearman, MMRV and the score error of the per-policy means, each with a 95% bootstrap
    interval (each policy's episodes resampled with replacement, jointly in both worlds)."""
    real, sim = np.asarray(real, float), np.asarray(sim, float)
    stats = {"pearson": pearson, "spearman": spearman, "mmrv": mmrv, "score_error": score_error}
    point = {k: f(real.mean(1), sim.mean(1)) for k, f in stats.items()}
    rng = np.random.default_rng(seed)
    p, e = real.shape
    boots = {k: [] for k in stats}
    for _ in range(n_boot):
        idx = rng.integers(0, e, (p, e))
        r = np.take_along_axis(real, idx, 1).mean(1)
        s = np.take_along_axis(sim, idx, 1).mean(1)
        for k, f in stats.items():
            boots[k].append(f(r, s))
    out = {}
    for k in stats:
        b = np.asarray(boots[k])
        b = b[np.isfinite(b)]
        lo, hi = (np.percentile(b, [2.5, 97.5]) if len(b) else (np.nan, np.nan))
        out[k] = {"value": point[k], "ci95": [float(lo), float(hi)]}
    return out


def mean_ci(x: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    x = np.asarray(x, float)
    rng = np.random.default_rng(seed)
    b = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    return {"mean": float(x.mean()), "ci95": [float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))]}


# ----------------------------------------------------------------------------- the evaluation
def t_whole(frames: np.ndarray, reference: np.ndarray, tolerance: float = 0.4) -> np.ndarray:
    """(...,) bool per frame: its T (slate-grey block mask) has the reference frame's area
    within +-40%. frames (..., H, W, 3); reference (H, W, 3) or broadcastable (..., 1, H, W, 3)."""
    from hma_ros.evaluation.tracking import block_mask

    ref = block_mask(reference).sum(axis=(-2, -1))
    area = block_mask(frames).sum(axis=(-2, -1))
    return np.abs(area - ref) <= tolerance * np.maximum(ref, 1)


def t_intact(frames: np.ndarray, reference: np.ndarray, tolerance: float = 0.4) -> float:
    """Share of frames whose T is whole (`t_whole`): where the imagined T dissolved or smeared,
    the judge's reading of it means little."""
    return float(np.mean(t_whole(frames, reference, tolerance)))


def score_episode(judge, frames: np.ndarray) -> dict:
    """An episode's 2 Hz frames (real or imagined) scored by the judge: max coverage, success;
    and pixel_max_coverage, the same read off the T's pixels on the goal (no learned part)."""
    from hma_ros.evaluation.tracking import goal_cover

    cov = judge.estimate(frames)["coverage"]
    return {"max_coverage": float(cov.max()), "success": float(cov.max() > SUCCESS),
            "pixel_max_coverage": float(goal_cover(frames).max())}


def learned_summary(policy: str, rows: list[dict], model_steps: int, judge: str) -> dict:
    """One policy's learned-simulator episodes (score_episode rows + wall_s) in the field names
    of rank_policies' JSON (learned_judge, learned_pixels, learned_success, with intervals)."""
    raw = {"learned_judge": [r["max_coverage"] for r in rows], "learned_pixels": [r["pixel_max_coverage"] for r in rows],
           "learned_success": [r["success"] for r in rows]}
    return {"policy": policy, "episodes": len(rows), "model_steps": model_steps, "judge": judge,
            "score": "max coverage over the episode, read by the judge from the imagined frames",
            "policies": {policy: {k: mean_ci(v) for k, v in raw.items()}},
            "wall_s_per_episode": {"learned": float(np.mean([r["wall_s"] for r in rows]))},
            "episodes_raw": {policy: raw}}


def episode_steps(seconds: float, sim, stride: int) -> int:
    """An episode of `seconds` as 2 Hz model steps of `stride` native commands (at least one)."""
    return max(1, int(round(seconds * sim.info.control_hz / stride)))


def off_goal_seeds(sim, n: int, base: int) -> list[int]:
    """The first n seeds from `base` whose gym-pusht start has the T off the goal (coverage 0):
    a start that already covers the goal would score a policy that does nothing."""
    seeds, s = [], base
    while len(seeds) < n:
        sim.reset(s)
        if sim.state()["coverage"] == 0.0:
            seeds.append(s)
        s += 1
    return seeds


def real_scores(policy: FramePolicy, judge, sim, spec, stride: int, episodes: int = 50, seconds: float = 10.0,
                seed: int = 0, prompt: int = 4, progress: bool = True) -> dict:
    """One policy in gym-pusht alone, from the same starts as rank_policies (off-goal seeds, the
    robot standing still for `prompt` frames first): max coverage per episode (the simulator's),
    success, with intervals."""
    from tqdm import tqdm

    steps = episode_steps(seconds, sim, stride)
    cov = []
    for ep, ep_seed in enumerate(tqdm(off_goal_seeds(sim, episodes, SEED_BASE + seed * 10_000), desc=policy.name,
                                      unit="episode", disable=not progress)):
        sim.reset(ep_seed)
        still_prefix(sim, spec, stride, prompt - 1)
        policy.start(judge, stride, sim.info, np.random.default_rng([seed, 0, ep]))
        cov.append(float(real_episode(sim, spec, policy, steps)["coverage"].max()))
    return {"policy": policy.name, "episodes": episodes, "seconds": seconds, "max_coverage": mean_ci(cov),
            "success": mean_ci([c > SUCCESS for c in cov]), "max_coverage_raw": cov}


def rank_policies(wm, judge, sim, spec, episodes: int = 50, seconds: float = 10.0, seed: int = 0,
                  policies=POLICIES, prompt: int | None = None, progress: bool = True,
                  keep: dict | None = None, loop: str = "pixels") -> tuple[dict, dict]:
    """Every policy, `episodes` episodes in the simulator and in the world model from the same
    initial states, after `prompt` real frames of the robot standing still (default: the
    model's prompt length; 1 = the initial frame alone). Returns (results for JSON, {policy: (real frames, imagined frames)} of the
    first episode, for GIFs). Pass a dict as `keep` to receive every episode's 2 Hz frames in
    it: {policy: {"real": [(steps + 1, H, W, 3)], "imagined": [...]}} (to study other scorers
    offline, e.g. `python scripts/rank_frames.py`)."""
    from tqdm import tqdm

    from hma_ros.evaluation.pusht_judge import JudgeError
    from hma_ros.evaluation.tracking import T_SHAPE_MIN, t_shape

    if sim.info.name != "pusht":
        raise JudgeError(f"policy ranking scores PushT coverage; the simulator is {sim.info.name}")
    stride = wm.stride
    steps = episode_steps(seconds, sim, stride)
    if prompt is None:
        prompt = wm.prompt
    rows: dict[str, dict[str, list]] = {}
    firsts: dict = {}
    wall = {"real": [], "learned": []}
    total = len(policies) * episodes
    bar = tqdm(total=total, desc="rank policies", unit="episode", disable=not progress)
    seeds = off_goal_seeds(sim, episodes, SEED_BASE + seed * 10_000)
    for pi, pol in enumerate(policies):
        r = rows[pol.name] = {"real_sim": [], "real_judge": [], "learned_judge": [], "learned_pixels": [],
                              "real_success": [], "learned_success": [], "learned_t_intact": [],
                              "learned_t_shaped": []}
        for ep, ep_seed in enumerate(seeds):
            t0 = time.perf_counter()
            sim.reset(ep_seed)
            prefix = still_prefix(sim, spec, stride, prompt - 1)
            pol.start(judge, stride, sim.info, np.random.default_rng([seed, pi, ep]))
            real = real_episode(sim, spec, pol, steps)
            t1 = time.perf_counter()
            pol.start(judge, stride, sim.info, np.random.default_rng([seed, pi, ep]))
            imagined = learned_episode(wm, prefix, pol, steps, ep_seed, loop)
            t2 = time.perf_counter()
            wall["real"].append(t1 - t0)
            wall["learned"].append(t2 - t1)
            jr, jl = score_episode(judge, real["frames"]), score_episode(judge, imagined)
            r["learned_t_intact"].append(t_intact(imagined, real["frames"][0]))
            r["learned_t_shaped"].append(float(np.mean(t_shape(imagined[1:]) >= T_SHAPE_MIN)))
            r["real_sim"].append(float(real["coverage"].max()))
            r["real_judge"].append(jr["max_coverage"])
            r["learned_judge"].append(jl["max_coverage"])
            r["learned_pixels"].append(jl["pixel_max_coverage"])
            r["real_success"].append(float(real["coverage"].max() > SUCCESS))
            r["learned_success"].append(jl["success"])
            if ep == 0:
                firsts[pol.name] = (real["frames"], imagined)
            if keep is not None:
                k = keep.setdefault(pol.name, {"real": [], "imagined": []})
                k["real"].append(real["frames"])
                k["imagined"].append(imagined)
            bar.update(1)
    bar.close()
    names = [p.name for p in policies]
    per = {n: {k: mean_ci(v) for k, v in rows[n].items()} for n in names}
    table = {k: np.array([rows[n][k] for n in names])
             for k in ("real_sim", "real_judge", "learned_judge", "learned_pixels")}
    gt = table["real_sim"].mean(1)
    results = {
        "episodes": episodes, "seconds": seconds, "native_steps": steps * stride, "model_steps": steps,
        "prompt_frames": prompt, "loop": loop,
        "seeds": seeds, "score": "max coverage over the episode (starts with the T off the goal)",
        "policies": per,
        "spread": float(gt.max() / gt.min()) if gt.min() > 0 else float("inf"),
        "learned_vs_real": agreement(table["real_sim"], table["learned_judge"]),
        "judge_vs_real": agreement(table["real_sim"], table["real_judge"]),
        # the imagined frames read without the judge: the T's pixels on the goal. The judge,
        # trained on whole Ts, reads a pose -- near the goal -- into a frame whose T melted or
        # vanished; the pixels read nothing there, so the two differ where the model erased the T
        "learned_pixels_vs_real": agreement(table["real_sim"], table["learned_pixels"]),
        "wall_s_per_episode": {k: float(np.mean(v)) for k, v in wall.items()},
        "episodes_raw": rows,
    }
    return results, firsts


CLOSED_LOOP_BASE = SEED_BASE + 500_000  # gen-closed-loop's starts: apart from ranking seeds 0..49's


class _Recorder:
    """Wraps a policy: every chunk it answers, kept (clipped as the simulator clips)."""

    def __init__(self, policy, sim):
        self.policy, self.sim, self.chunks = policy, sim, []

    def __call__(self, frame):
        chunk = np.stack([self.sim.clip(np.asarray(a, float)) for a in self.policy(frame)])
        self.chunks.append(chunk)
        return chunk


def closed_loop_plans(wm, judge, sim, spec, policies, episodes: int, seconds: float = 10.0, seed: int = 0,
                      prompt: int | None = None, progress: bool = True) -> list[tuple[int, str, np.ndarray]]:
    """The learned simulator's closed-loop commands, to replay in the real simulator (`hma
    gen-closed-loop`): for `episodes` off-goal starts from CLOSED_LOOP_BASE + seed * 10_000 (none a start of
    ranking seeds 0-49), every policy runs in the world model as `rank_policies` runs it -- the real
    prefix of the robot standing still, then each chunk answered from the newest imagined frame.
    Returns [(start seed, policy name, every native command from the start: the prefix's rest
    commands, then the policy's)]. Played in gym-pusht, they show what those pushes really do --
    the states a policy reaches by exploiting the model's errors, with their true consequences."""
    from tqdm import tqdm

    stride = wm.stride
    steps = episode_steps(seconds, sim, stride)
    if prompt is None:
        prompt = wm.prompt
    seeds = off_goal_seeds(sim, episodes, CLOSED_LOOP_BASE + seed * 10_000)
    plans = []
    bar = tqdm(total=len(seeds) * len(policies), desc="closed loop", unit="episode", disable=not progress)
    for ep, ep_seed in enumerate(seeds):
        sim.reset(ep_seed)
        rest = np.repeat(sim.rest_action()[None].astype(float), stride * (prompt - 1), 0)  # held where it starts
        prefix = still_prefix(sim, spec, stride, prompt - 1)
        for pi, pol in enumerate(policies):
            pol.start(judge, stride, sim.info, np.random.default_rng([CLOSED_LOOP_BASE + seed, pi, ep]))
            rec = _Recorder(pol, sim)
            learned_episode(wm, prefix, rec, steps, ep_seed)
            plans.append((ep_seed, pol.name, np.concatenate([rest, *rec.chunks])))
            bar.update(1)
    bar.close()
    return plans


def parse_policies(text: str) -> list[FramePolicy]:
    """"pose:25,waypoint,random" -> FramePolicies (KIND[:NOISE], noise in world units)."""
    out = []
    for part in filter(None, (x.strip() for x in text.split(","))):
        kind, _, noise = part.partition(":")
        if kind not in ("pose", "waypoint", "random"):
            raise ValueError(f"policy {part!r}: KIND[:NOISE] with KIND pose, waypoint or random")
        try:
            n = float(noise or 0.0)
        except ValueError:
            raise ValueError(f"policy {part!r}: the noise after ':' must be a number (world units)") from None
        name = "random" if kind == "random" else f"{kind} pusher" + (f"+noise {n:g}" if n else "")
        out.append(FramePolicy(name, kind, n))
    if not out:
        raise ValueError("no policies given")
    return out


def format_ranking(res: dict) -> str:
    lines = [f"{res['episodes']} episodes x {res['native_steps']} native steps ({res['seconds']:g} s, "
             f"{res['model_steps']} model steps) after {res['prompt_frames']} real frames standing still; "
             f"score: {res['score']} (mean [95% CI])",
             "| policy | gym-pusht (sim) | gym-pusht (judge) | learned sim (judge) | learned sim (pixels) "
             "| success real / learned | imagined T intact | imagined T a whole T |",
             "|---|---|---|---|---|---|---|---|"]

    def f(d):
        return f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"

    for name, p in res["policies"].items():
        px = f(p["learned_pixels"]) if "learned_pixels" in p else "-"
        shaped = f"{p['learned_t_shaped']['mean']:.2f}" if "learned_t_shaped" in p else "-"  # older JSON: none
        lines.append(f"| {name} | {f(p['real_sim'])} | {f(p['real_judge'])} | {f(p['learned_judge'])} | {px} | "
                     f"{p['real_success']['mean']:.2f} / {p['learned_success']['mean']:.2f} | "
                     f"{p['learned_t_intact']['mean']:.2f} | {shaped} |")
    for label, key in (("learned simulator", "learned_vs_real"), ("judge on real frames", "judge_vs_real"),
                       ("learned simulator read by pixels", "learned_pixels_vs_real")):
        a = res.get(key)
        if a is None:
            continue
        lines.append(f"{label} vs gym-pusht: " + ", ".join(
            f"{k} {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for k, v in a.items()))
    w = res["wall_s_per_episode"]
    lines.append(f"ground-truth spread (best / worst mean): {res['spread']:.2f}x; wall-clock per episode: "
                 f"gym-pusht {w['real']:.2f} s, learned simulator {w['learned']:.2f} s")
    return "\n".join(lines)


def scatter_png(res: dict, path, size: int = 480) -> None:
    """Ground truth (x) vs learned simulator (y), one point per policy with 95% intervals, the
    diagonal dashed. Drawn with Pillow (no plotting dependency)."""
    from PIL import Image, ImageDraw

    pol = res["policies"]
    vals = [v for p in pol.values() for k in ("real_sim", "learned_judge") for v in p[k]["ci95"]]
    top = max(0.05, max(vals) * 1.1)
    m = 60
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)

    def xy(x, y):
        return m + (size - 2 * m) * x / top, size - m - (size - 2 * m) * y / top

    d.rectangle([m, m, size - m, size - m], outline="black")
    for i in range(0, 21):  # dashed diagonal
        a, b = xy(top * i / 20, top * i / 20), xy(top * (i + 0.5) / 20, top * (i + 0.5) / 20)
        if i < 20:
            d.line([a, b], fill="gray")
    for t in np.linspace(0, top, 5):
        d.text((xy(t, 0)[0] - 10, size - m + 6), f"{t:.2f}", fill="black")
        d.text((8, xy(0, t)[1] - 6), f"{t:.2f}", fill="black")
    d.text((size / 2 - 80, size - 28), "gym-pusht max coverage", fill="black")
    d.text((8, 20), "learned simulator (judge)", fill="black")
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    a = res["learned_vs_real"]
    d.text((m + 8, m + 8), f"Pearson {a['pearson']['value']:.2f}  Spearman {a['spearman']['value']:.2f}  "
                           f"MMRV {a['mmrv']['value']:.3f}", fill="black")
    for i, (name, p) in enumerate(pol.items()):
        c = colours[i % len(colours)]
        x, y = p["real_sim"]["mean"], p["learned_judge"]["mean"]
        (x0, _), (x1, _) = xy(p["real_sim"]["ci95"][0], 0), xy(p["real_sim"]["ci95"][1], 0)
        (_, y0), (_, y1) = xy(0, p["learned_judge"]["ci95"][0]), xy(0, p["learned_judge"]["ci95"][1])
        px, py = xy(x, y)
        d.line([(x0, py), (x1, py)], fill=c, width=2)
        d.line([(px, y0), (px, y1)], fill=c, width=2)
        d.ellipse([px - 5, py - 5, px + 5, py + 5], fill=c)
        d.text((m + 8, m + 26 + 14 * i), f"o {name}", fill=c)
    img.save(path)
