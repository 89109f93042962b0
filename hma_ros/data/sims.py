"""Real simulators behind one small interface, for `hma gen-data` and `sim_robot_node`.

Each `Sim` advances in control periods of `1 / control_hz` seconds, renders an RGB camera
frame on demand, exposes joint positions, per-step ground-truth state, and three kinds of
policy: a purposeful scripted controller, that controller with noise, and smooth random actions.

PushT runs on gym-pusht (pymunk); reacher, cheetah and manipulator on dm_control (MuJoCo,
rendered through OSMesa when no display/GPU is present). Imports are lazy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

SIM_NAMES = ("pusht", "reacher", "cheetah", "manipulator")


@dataclass(frozen=True)
class SimInfo:
    name: str
    action_dim: int
    control_hz: float
    joint_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]


class Sim:
    info: SimInfo

    def reset(self, seed: int) -> None: ...
    def step(self, action: np.ndarray) -> None: ...
    def render(self) -> np.ndarray: ...  # (H, W, 3) uint8
    def joint_positions(self) -> np.ndarray: ...
    def state(self) -> dict[str, float]: ...
    def expert_action(self, rng: np.random.Generator) -> np.ndarray: ...

    def rest_action(self) -> np.ndarray:
        """The command that holds the robot still (default: zero, e.g. no torque)."""
        return np.zeros(self.info.action_dim)

    def close(self) -> None:
        pass

    def clip(self, action: np.ndarray) -> np.ndarray:
        return np.clip(action, self.info.action_low, self.info.action_high)


class SmoothRandom:
    """Smooth random actions: an Ornstein-Uhlenbeck process in the action box, re-seeded
    with a new random set point every `hold` seconds."""

    def __init__(self, info: SimInfo, rng: np.random.Generator, hold_s: float = 1.0):
        self.info, self.rng = info, rng
        self.low = np.asarray(info.action_low, float)
        self.high = np.asarray(info.action_high, float)
        self.every = max(1, int(round(hold_s * info.control_hz)))
        self.n = 0
        self.value = rng.uniform(self.low, self.high)
        self.target = self.value.copy()

    def __call__(self) -> np.ndarray:
        if self.n % self.every == 0:
            self.target = self.rng.uniform(self.low, self.high)
        self.n += 1
        alpha = min(1.0, 5.0 / self.info.control_hz)  # ~0.2 s time constant
        self.value = self.value + alpha * (self.target - self.value)
        return self.value.copy()


class Policy:
    """'expert' (scripted), 'noisy' (expert + Gaussian noise, 20% of the range), 'random', and
    for simulators with a task-solving controller (`pose_action`: PushT's `PushTPosePusher`)
    'pose' and 'pose_noisy' (+ noise of 10% of the range): demonstrations that solve the task,
    with many contacts, which gen-data's default three kinds rarely make; 'pose_elsewhere': the
    same controller pushing the block towards random poses instead of the task's goal (a new one
    every `RETARGET_S` seconds), so that in the data the block's motion follows the pushes and not
    the goal drawn in the frame -- a world model trained only on goal-seeking pushes learns that
    the block drifts towards the goal."""

    KINDS = ("expert", "noisy", "random", "pose", "pose_noisy", "pose_elsewhere")
    RETARGET_S = 4.0

    def __init__(self, sim: Sim, kind: str, rng: np.random.Generator):
        if kind not in self.KINDS:
            raise ValueError(f"unknown policy {kind!r}; choose one of {self.KINDS}")
        if kind.startswith("pose") and not hasattr(sim, "pose_action"):
            raise ValueError(f"policy {kind!r}: the {sim.info.name} simulator has no task-solving controller "
                             f"(only pusht has); use expert, noisy or random")
        self.sim, self.kind, self.rng = sim, kind, rng
        self.random = SmoothRandom(sim.info, rng)
        span = np.asarray(sim.info.action_high) - np.asarray(sim.info.action_low)
        self.noise_scale = (0.1 if kind == "pose_noisy" else 0.2) * span
        if kind.startswith("pose"):
            sim.new_pose_episode()
        self.steps, self.every = 0, max(1, int(round(self.RETARGET_S * sim.info.control_hz)))
        self.target = None

    def __call__(self) -> np.ndarray:
        if self.kind == "random":
            a = self.random()
        elif self.kind == "pose_elsewhere":
            if self.steps % self.every == 0:
                self.target = self.sim.random_pose(self.rng)
            self.steps += 1
            a = self.sim.pose_action(self.rng, goal=self.target)
        else:
            a = self.sim.pose_action(self.rng) if self.kind.startswith("pose") else self.sim.expert_action(self.rng)
            if self.kind in ("noisy", "pose_noisy"):
                a = a + self.rng.normal(0.0, self.noise_scale)
        return self.sim.clip(np.asarray(a, float))


# ----------------------------------------------------------------------------- PushT
class PushTPusher:
    """PushT's scripted controller as a function of what it sees: walk around the block to the
    side opposite the goal, push it towards the goal, re-approach when it slips off the line;
    once the block is home, wander to random points (so the scene keeps moving). Returns the
    PD target (world units). It keeps a little memory (phase, recent agent positions), so use
    one per episode. `PushTSim.expert_action` calls it on the true state; a policy that
    estimates the state from camera frames calls it on its estimates."""

    def __init__(self, low: float = 0.0, high: float = 512.0):
        self.low, self.high = low, high
        self._waypoint: np.ndarray | None = None
        self._phase = "approach"
        self._trail: list[np.ndarray] = []
        self._unstick, self._escape = 0, None

    def __call__(self, agent, block, goal, rng: np.random.Generator) -> np.ndarray:
        agent = np.asarray(agent, float)
        block = np.asarray(block, float)
        goal = np.asarray(goal, float)
        to_goal = goal - block
        dist = np.linalg.norm(to_goal)
        self._trail = (self._trail + [agent])[-10:]
        if self._unstick > 0 or (len(self._trail) == 10 and np.ptp(np.array(self._trail), axis=0).max() < 6.0):
            if self._unstick <= 0:  # wedged against the block or a wall: back off somewhere random
                self._unstick, self._escape = 8, rng.uniform(60.0, 452.0, 2)
                self._phase = "approach"
            self._unstick -= 1
            return self._toward(agent, self._escape)
        behind = block - 75.0 * to_goal / max(dist, 1e-9)
        if dist < 12.0 or np.any(behind < 25.0) or np.any(behind > 487.0):
            # home, or the block is against a wall (no room behind it): wander to random points
            if self._waypoint is None or np.linalg.norm(agent - self._waypoint) < 20.0:
                self._waypoint = rng.uniform(60.0, 452.0, 2)
            return self._toward(agent, self._waypoint)
        self._waypoint = None
        u = to_goal / dist
        perp = np.array([-u[1], u[0]])
        behind = block - 75.0 * u
        lateral = abs(np.dot(agent - block, perp))
        if self._phase == "push":
            if lateral > 35.0 or np.dot(block - agent, u) < 15.0:
                self._phase = "approach"
            else:
                return self._toward(agent, agent + 50.0 * u + 0.5 * (np.dot(block - agent, perp)) * perp)
        # approach: go around the block if it is in the way
        if np.linalg.norm(agent - behind) < 18.0:
            self._phase = "push"
            return self._toward(agent, agent + 40.0 * u)
        seg = behind - agent
        tpar = np.clip(np.dot(block - agent, seg) / max(np.dot(seg, seg), 1e-9), 0.0, 1.0)
        if np.linalg.norm(agent + tpar * seg - block) < 70.0 and np.dot(agent - block, u) > -50.0:
            side = 1.0 if np.dot(agent - block, perp) >= 0 else -1.0
            return self._toward(agent, block + side * 95.0 * perp - 45.0 * u)
        return self._toward(agent, behind)

    def _toward(self, agent: np.ndarray, target: np.ndarray, max_step: float = 60.0) -> np.ndarray:
        step = target - agent
        n = np.linalg.norm(step)
        if n > max_step:  # limit how far ahead the PD target is, like a teleoperator's mouse
            step *= max_step / n
        return self.clip(agent + step)

    def clip(self, a: np.ndarray) -> np.ndarray:
        return np.clip(a, self.low, self.high)


class PushTPosePusher:
    """A PushT controller that solves the task (position *and* angle), for ranking policies and
    for demonstrations: ~0.72 mean max coverage in 10 s from off-goal starts, where the waypoint
    `PushTPusher` (position only) scores 0.05, as random commands do.

    Each time it is free it picks where to push: for every point along the T's outline (every
    20 units) it simulates, in its own state-only gym-pusht, the agent starting just outside that
    point and pushing inward for `horizon` control steps from the block's current pose, and keeps
    the contact that most reduces the pose error (distance + `w_angle` x angle difference). It
    then walks around the block to that point and pushes for `push_steps` steps. When no push
    helps (home) it holds. Like `PushTPusher` it is a function of (agent, block pose, goal pose),
    true or estimated from a frame; `reset()` it between episodes."""

    def __init__(self, horizon: int = 5, push_steps: int = 4, w_angle: float = 60.0, spacing: float = 20.0):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        import gym_pusht  # noqa: F401
        import gymnasium as gym

        self.env = gym.make("gym_pusht/PushT-v0", obs_type="state")
        self.u = self.env.unwrapped
        self.pts, self.nrm = _tee_outline(spacing)
        self.horizon, self.push_steps, self.w_angle = horizon, push_steps, w_angle
        self.reset()

    def reset(self) -> None:
        """Forget the current push and restart the planning simulator (a new episode): what it
        planned before must not change what it plans now."""
        self.env.reset(seed=0)
        self.contact: int | None = None
        self.pushing = self.cool = 0

    def close(self) -> None:
        self.env.close()

    def _error(self, x: float, y: float, angle: float, goal) -> float:
        return float(np.hypot(x - goal[0], y - goal[1]) + self.w_angle * abs(_wrap(angle - goal[2])))

    def _outline(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.cos(block[2]), np.sin(block[2])
        rot = np.array([[c, -s], [s, c]])
        return self.pts @ rot.T + block[:2], self.nrm @ rot.T

    def _choose(self, block: np.ndarray, goal) -> int | None:
        pts, nrm = self._outline(block)
        u = self.u
        best, best_k = self._error(*block, goal) - 1.0, None
        for k in range(len(pts)):
            start = pts[k] + 17.0 * nrm[k]  # the agent's radius is 15
            if np.any(start < 5.0) or np.any(start > 507.0):
                continue
            u.agent.position, u.agent.velocity = tuple(start), (0.0, 0.0)
            u.block.position, u.block.angle = tuple(block[:2]), float(block[2])
            u.block.velocity, u.block.angular_velocity = (0.0, 0.0), 0.0
            for _ in range(self.horizon):
                self.env.step(pts[k] - 40.0 * nrm[k])
            e = self._error(u.block.position[0], u.block.position[1], u.block.angle, goal)
            if e < best:
                best, best_k = e, k
        return best_k

    def __call__(self, agent, block, goal, rng: np.random.Generator | None = None) -> np.ndarray:
        """agent (x, y), block (x, y, angle), goal (x, y, angle) -> the PD target."""
        agent, block = np.asarray(agent, float), np.asarray(block, float)
        pts, nrm = self._outline(block)
        if self.pushing > 0:
            k = self.contact
            self.pushing -= 1
            if self.pushing == 0:
                self.contact = None
            return np.clip(pts[k] - 40.0 * nrm[k], 0.0, 512.0)
        if self.contact is None:
            if self.cool > 0:
                self.cool -= 1
                return np.clip(agent, 0.0, 512.0)
            self.contact = self._choose(block, goal)
            if self.contact is None:
                self.cool = 5  # no push helps (home, or wedged): hold a while, then look again
                return np.clip(agent, 0.0, 512.0)
        k = self.contact
        approach = pts[k] + 20.0 * nrm[k]
        if np.linalg.norm(agent - approach) < 12.0:
            self.pushing = self.push_steps
            return np.clip(pts[k] - 40.0 * nrm[k], 0.0, 512.0)
        # walk around the block (a circle about the T's middle) unless the way in is clear
        c, s = np.cos(block[2]), np.sin(block[2])
        centre = block[:2] + 45.0 * np.array([-s, c])
        radius = 95.0
        va, vt = agent - centre, approach - centre
        seg = approach - agent
        tpar = np.clip(np.dot(centre - agent, seg) / max(np.dot(seg, seg), 1e-9), 0.0, 1.0)
        target = approach
        if np.linalg.norm(agent + tpar * seg - centre) < 0.85 * radius and np.linalg.norm(va) > 1e-6:
            d = _wrap(np.arctan2(vt[1], vt[0]) - np.arctan2(va[1], va[0]))
            if abs(d) >= 0.35:  # else the approach point is on this side: straight in
                ang = np.arctan2(va[1], va[0]) + np.sign(d) * min(abs(d), 0.6)
                target = centre + max(radius, np.linalg.norm(va)) * np.array([np.cos(ang), np.sin(ang)])
        step = target - agent
        n = np.linalg.norm(step)
        if n > 60.0:
            step *= 60.0 / n
        return np.clip(agent + step, 0.0, 512.0)


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _tee_outline(spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ~spacing along the T's outline and their outward normals, in the block's
    frame (gym-pusht's add_tee: a 120 x 30 bar, a 30 x 90 stem)."""
    s, n = 30.0, 4.0
    poly = np.array([(-n * s / 2, 0), (n * s / 2, 0), (n * s / 2, s), (s / 2, s), (s / 2, n * s), (-s / 2, n * s),
                     (-s / 2, s), (-n * s / 2, s)])
    ccw = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1]) > 0
    pts, nrm = [], []
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        d = b - a
        t = d / np.linalg.norm(d)
        out = np.array([t[1], -t[0]]) if ccw else np.array([-t[1], t[0]])
        k = max(1, int(np.linalg.norm(d) // spacing))
        for j in range(k):
            pts.append(a + d * (j + 0.5) / k)
            nrm.append(out)
    return np.array(pts), np.array(nrm)


class PushTSim(Sim):
    """gym-pusht: a 2-D target for the round agent's PD controller, in pixels [0, 512]."""

    info = SimInfo("pusht", 2, 10.0, ("agent_x", "agent_y"), (0.0, 0.0), (512.0, 512.0))

    def __init__(self, image_size: int = 96):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        import gym_pusht  # noqa: F401  (registers the env)
        import gymnasium as gym

        self.env = gym.make(
            "gym_pusht/PushT-v0", obs_type="pixels_agent_pos", render_mode="rgb_array",
            observation_width=image_size, observation_height=image_size,
        )
        self.u = self.env.unwrapped
        self._info: dict = {}
        self.pusher = PushTPusher()

    def reset(self, seed: int) -> None:
        _obs, self._info = self.env.reset(seed=int(seed))
        self.pusher = PushTPusher()

    def reset_to(self, agent_xy, block_xy, block_angle: float) -> None:
        """Place the agent and the block (gym-pusht's reset_to_state); one physics step then
        separates them if they overlap, so read the pose back from state()."""
        state = [*map(float, agent_xy), *map(float, block_xy), float(block_angle)]
        _obs, self._info = self.env.reset(options={"reset_to_state": state})
        self.pusher = PushTPusher()

    def step(self, action: np.ndarray) -> None:
        _obs, _r, _term, _trunc, self._info = self.env.step(np.asarray(action, float))

    def render(self) -> np.ndarray:
        return np.ascontiguousarray(self.u._render(visualize=False), dtype=np.uint8)

    def joint_positions(self) -> np.ndarray:
        return np.asarray(self.u.agent.position, float)

    def rest_action(self) -> np.ndarray:
        return self.clip(self.joint_positions())  # the PD target where the agent is: it stays

    def state(self) -> dict[str, float]:
        bx, by, ba = (float(v) for v in list(self.u.block.position) + [self.u.block.angle])
        if "coverage" in self._info:
            coverage, success = float(self._info["coverage"]), bool(self._info.get("is_success", False))
        else:  # right after reset gym-pusht's info has no coverage, though the T may overlap the goal
            coverage = float(self.u._get_coverage())
            success = coverage > self.u.success_threshold
        ax, ay = (float(v) for v in self.u.agent.position)
        return {"block_x": bx, "block_y": by, "block_angle": ba, "coverage": coverage,
                "success": float(success), "agent_x": ax, "agent_y": ay}

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        """The waypoint pusher (`PushTPusher`) on the true state."""
        return self.pusher(self.u.agent.position, self.u.block.position, self.u.goal_pose[:2], rng)

    def new_pose_episode(self) -> None:
        """Before an episode of `pose_action`: the pose pusher (made once: it owns a planning
        simulator) forgets the last episode."""
        if getattr(self, "_pose", None) is None:
            self._pose = PushTPosePusher()
        self._pose.reset()

    def pose_action(self, rng: np.random.Generator, goal=None) -> np.ndarray:
        """The pose pusher (`PushTPosePusher`, which solves the task) on the true state, pushing
        the block towards `goal` (x, y, angle; default the task's goal pose)."""
        if getattr(self, "_pose", None) is None:
            self.new_pose_episode()
        block = [*self.u.block.position, self.u.block.angle]
        return self._pose(self.u.agent.position, block, self.u.goal_pose if goal is None else goal, rng)

    @staticmethod
    def random_pose(rng: np.random.Generator) -> np.ndarray:
        """A block pose drawn uniformly over the table's inner part (x, y in [100, 412] world
        units, any angle): a target for `pose_action` other than the task's goal."""
        return np.array([*rng.uniform(100.0, 412.0, 2), rng.uniform(-np.pi, np.pi)])

    def close(self) -> None:
        if getattr(self, "_pose", None) is not None:
            self._pose.close()
        self.env.close()


# ----------------------------------------------------------------------------- dm_control
_DM = {  # name: (domain, task, action repeat, joint names)
    "reacher": ("reacher", "easy", 1, ("shoulder", "wrist")),
    "cheetah": ("cheetah", "run", 5, ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")),
    "manipulator": ("manipulator", "bring_ball", 2,
                    ("arm_root", "arm_shoulder", "arm_elbow", "arm_wrist", "finger")),
}


class DmControlSim(Sim):
    """dm_control suite task; native command rate = 1 / (physics control step x repeat)."""

    def __init__(self, name: str, image_size: int = 64):
        os.environ.setdefault("MUJOCO_GL", "osmesa")
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
        from dm_control import suite

        domain, task, repeat, joints = _DM[name]
        self.env = suite.load(domain, task, task_kwargs={"random": 0})
        spec = self.env.action_spec()
        self.repeat = repeat
        hz = 1.0 / (self.env.control_timestep() * repeat)
        self.info = SimInfo(name, int(spec.shape[0]), hz, joints,
                            tuple(float(v) for v in spec.minimum), tuple(float(v) for v in spec.maximum))
        self.size = image_size
        self.camera = 0
        self.t = 0.0

    def reset(self, seed: int) -> None:
        self.env.task._random = np.random.RandomState(int(seed) % (2**31))
        self.env.reset()
        self.t = 0.0

    def step(self, action: np.ndarray) -> None:
        for _ in range(self.repeat):
            self.env.step(np.asarray(action, float))
        self.t += 1.0 / self.info.control_hz

    def render(self) -> np.ndarray:
        return self.env.physics.render(self.size, self.size, camera_id=self.camera)

    def joint_positions(self) -> np.ndarray:
        named = self.env.physics.named.data.qpos
        return np.array([float(np.ravel(named[j])[0]) for j in self.info.joint_names])

    def state(self) -> dict[str, float]:
        phys = self.env.physics
        out: dict[str, float] = {}
        if self.info.name == "reacher":
            out["finger_to_target"] = float(phys.finger_to_target_dist())
        elif self.info.name == "cheetah":
            out["speed"] = float(phys.speed())
        elif self.info.name == "manipulator":
            pos = phys.named.data.xpos
            out["ball_x"], out["ball_z"] = float(pos["ball", "x"]), float(pos["ball", "z"])
        return out

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        phys = self.env.physics
        n = self.info.action_dim
        if self.info.name == "reacher":
            # Jacobian-transpose reach towards the target, with joint damping.
            import mujoco

            m, d = phys.model.ptr, phys.data.ptr
            gid = phys.model.name2id("finger", "geom")
            jacp = np.zeros((3, m.nv))
            mujoco.mj_jacGeom(m, d, jacp, None, gid)
            err = np.asarray(phys.named.data.geom_xpos["target"] - phys.named.data.geom_xpos["finger"])
            tau = 40.0 * jacp[:2, :2].T @ err[:2] - 0.5 * np.asarray(phys.data.qvel[:2])
            return self.clip(tau)
        # cheetah / manipulator: a periodic gait / reaching motion, a phase per joint
        phase = np.arange(n) * (2 * np.pi / max(n, 1))
        freq = 2.0 if self.info.name == "cheetah" else 0.5
        return self.clip(0.8 * np.sin(2 * np.pi * freq * self.t + phase))

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:  # dm_control's renderer may already be torn down at exit
            pass


def make_sim(name: str, image_size: int | None = None) -> Sim:
    """A simulator by embodiment name (`pusht`, `reacher`, `cheetah`, `manipulator`)."""
    if name == "pusht":
        return PushTSim(image_size or 96)
    if name in _DM:
        return DmControlSim(name, image_size or 64)
    raise ValueError(f"unknown simulator {name!r}; choose one of {', '.join(SIM_NAMES)}")
