"""WorldModel: the runtime API used by nodes, CLI, benchmarks and tests.

    wm = WorldModel.load("models/hma_discrete_small", embodiment="pusht")
    wm.reset()
    wm.observe(frame_uint8_HxWx3, action_chunk)   # action_chunk (stride, action_dim): the chunk
                                                  # that led INTO this frame (None for the first)
    frames = wm.imagine(future_chunks)            # (K, stride, action_dim) -> (K, H, W, 3) uint8
    chunk = wm.act()                              # next chunk (stride, action_dim), embodiment units

One 2 Hz step per observe(). Past slots' temporal keys/values are cached, so imagining a frame
costs only that frame's tokens per unmasking step; the cache slides past the training window.
Deterministic for a given seed (reset(seed) restarts the random stream). Temperature 0 (the
default) decodes greedily: on held-out PushT windows it scored ~4 dB higher than sampling at 1.0. Units are always the
embodiment's own (normalization statistics live in the checkpoint).

Rendering (`render`): "tokens" shows the tokenizer's decoding of the imagined tokens;
"residual" (default) also adds back the tokenizer's reconstruction error of the newest real
frame wherever the imagined frame does not differ from that frame's reconstruction -- static
background keeps the camera's detail instead of the tokenizer's approximation of it. See
`render_residual` and docs/architecture.md for why and what it measured.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, sub_state
from hma_ros.model.dynamics import DynamicsConfig, HMADynamics, KVCache
from hma_ros.model.maskgit import sample_frame
from hma_ros.model.tokenizer import TokenizerConfig, build_tokenizer

RENDER_MODES = ("residual", "tokens")


def render_residual(decoded: torch.Tensor, real: torch.Tensor, recon: torch.Tensor, tau: float = 8.0) -> torch.Tensor:
    """Imagined frames rendered as corrections of the newest real frame.

    decoded (K, H, W, 3) uint8: the tokenizer's decoding of K imagined frames; real (H, W, 3)
    uint8: the newest observed frame; recon (H, W, 3) uint8: the tokenizer's decoding of that
    frame's own tokens. Where an imagined frame equals `recon` (nothing predicted to change) the
    real frame's pixels come back exactly; where it departs by much more than `tau` grey levels
    the decoded pixels are kept: out = decoded + exp(-max_c |decoded - recon| / tau) * (real - recon)."""
    d = decoded.float()
    r = recon.float()
    gate = torch.exp(-(d - r).abs().amax(-1, keepdim=True) / tau)
    return (d + gate * (real.float() - r)).round().clamp(0, 255).to(torch.uint8)


def build_models(config: dict, state: dict | None = None, where: str = "checkpoint"):
    """(tokenizer, dynamics) from a checkpoint config (+ weights)."""
    try:
        tok = build_tokenizer(TokenizerConfig(**config["tokenizer"]))
        dyn = None
        if "dynamics" in config:
            dyn = HMADynamics(DynamicsConfig(**config["dynamics"]), config["embodiments"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: config does not describe an hma_ros model ({e})") from None
    if state is not None:
        try:
            tok.load_state_dict(sub_state(state, "tokenizer"))
            if dyn is not None:
                dyn.load_state_dict(sub_state(state, "dynamics"))
        except RuntimeError as e:
            raise CheckpointError(f"{where}: weights do not match its config ({str(e)[:300]})") from None
    return tok.eval(), (dyn.eval() if dyn is not None else None)


class WorldModel:
    def __init__(self, tokenizer, dynamics: HMADynamics, config: dict, embodiment: str,
                 device: str = "cpu", seed: int = 0, mask_steps: int = 2, temperature: float = 0.0,
                 use_cache: bool = True, name: str = "", render: str = "residual"):
        if embodiment not in config["embodiments"]:
            raise ValueError(f"checkpoint {name or ''} has no embodiment {embodiment!r}; it knows "
                             f"{', '.join(sorted(config['embodiments']))}. Finetune a new stem+head for it "
                             "(hma train --finetune) or pick one of these.")
        self.tok, self.dyn = tokenizer.to(device), dynamics.to(device)
        self.config, self.embodiment, self.device = config, embodiment, device
        self.name = name
        e = config["embodiments"][embodiment]
        self.stride, self.action_dim = int(e["stride"]), int(e["action_dim"])
        self.image_size = tuple(config["tokenizer"]["resolution"] for _ in range(2))
        self.stem = self.dyn.stems[embodiment]
        self.mask_steps, self.temperature, self.use_cache = mask_steps, temperature, use_cache
        if render not in RENDER_MODES:
            raise ValueError(f"render must be one of {RENDER_MODES}, got {render!r}")
        self.render = render
        self.window = self.dyn.cfg.window
        self.latency: dict[str, float] = {}
        self.reset(seed)

    @classmethod
    def load(cls, checkpoint: str | Path, embodiment: str, device: str = "cpu", **kw) -> WorldModel:
        config, state = load_checkpoint(checkpoint)
        if "dynamics" not in config:
            raise CheckpointError(f"{checkpoint}: a tokenizer-only checkpoint; train dynamics with `hma train`")
        tok, dyn = build_models(config, state, str(checkpoint))
        return cls(tok, dyn, config, embodiment, device=device, name=str(checkpoint), **kw)

    # ------------------------------------------------------------------ state
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)
        self.cache = KVCache(self.dyn.cfg.n_layers, self.window - 1)
        self.codes: list[torch.Tensor] = []  # (S, K) per observed slot, last window-1
        self.actions: list[torch.Tensor | None] = []  # normalized chunk into each slot
        self.steps = 0
        self._newest: tuple[torch.Tensor, torch.Tensor] | None = None  # newest real frame, its codes

    # ------------------------------------------------------------------ checks
    def _frame(self, frame) -> torch.Tensor:
        f = np.asarray(frame)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frame must be an (H, W, 3) uint8 RGB array, got {f.shape} {f.dtype}")
        if f.shape[:2] != self.image_size:
            from hma_ros.data.images import ImageSpec

            f = ImageSpec(size=self.image_size).prepare(f)
        return torch.from_numpy(np.ascontiguousarray(f))[None].to(self.device)

    def _chunk(self, chunk, what: str = "action chunk") -> torch.Tensor:
        a = np.asarray(chunk, dtype=np.float32)
        if a.shape != (self.stride, self.action_dim):
            raise ValueError(f"{what} for {self.embodiment} must be ({self.stride}, {self.action_dim}) "
                             f"(stride x action_dim), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contains NaN or inf")
        return self.stem.normalize(torch.from_numpy(a).to(self.device))

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def observe(self, frame, action_chunk=None) -> None:
        """Add one observed 2 Hz step: its frame and the action chunk that led into it."""
        t = time.perf_counter()
        x = self._frame(frame)
        a = self._chunk(action_chunk) if action_chunk is not None else None
        codes = self.tok.encode(x)  # (1, S, K)
        self._commit(codes, a)
        self._newest = (x[0], codes)
        self.latency["observe_ms"] = 1e3 * (time.perf_counter() - t)

    def _commit(self, codes: torch.Tensor, a: torch.Tensor | None) -> None:
        S = codes.shape[1]
        first = self.cache.next_pos == 0
        act_in = a[None, None] if a is not None else None
        masked_a = None
        if act_in is None and not first:
            act_in = torch.zeros(1, 1, self.stride, self.action_dim, device=self.device)
            masked_a = torch.ones(1, 1, dtype=torch.bool, device=self.device)
        _, _, kv = self.dyn(self.embodiment, codes[:, None], torch.zeros(1, 1, S, dtype=torch.bool,
                            device=self.device), act_in, masked_a, cache=self.cache, first_is_start=first)
        self.cache.append(kv)
        self.codes = (self.codes + [codes[0]])[-(self.window - 1):]
        self.actions = (self.actions + [a])[-(self.window - 1):]
        self.steps += 1

    @torch.no_grad()
    def imagine(self, future_chunks=None, horizon: int | None = None, start=None) -> np.ndarray:
        """K imagined frames following the newest observed one. future_chunks (K, stride, dim)
        in embodiment units: chunk i leads into imagined frame i. With future_chunks None, the
        policy head plans: each chunk is act() on the imagined history (horizon K required).
        start=(frame, chunk) first observes one more real step temporarily (e.g. the newest
        camera frame, which no completed step holds yet). The history is left unchanged."""
        if self.steps == 0 and start is None:
            raise RuntimeError("imagine() needs at least one observe() first")
        acts = None
        if future_chunks is not None:
            fut = np.asarray(future_chunks, dtype=np.float32)
            if fut.ndim != 3:
                raise ValueError(f"future_chunks must be (K, {self.stride}, {self.action_dim}), got {fut.shape}")
            acts = [self._chunk(c, f"future chunk {i}") for i, c in enumerate(fut)]
            horizon = len(acts)
        elif not horizon or horizon < 1:
            raise ValueError("imagine(None) plans with the policy head and needs horizon >= 1")
        t = time.perf_counter()
        snap = self.cache.snapshot()
        codes_hist, act_hist, steps, newest = list(self.codes), list(self.actions), self.steps, self._newest
        out = []
        try:
            if start is not None:
                self.observe(*start)
            pending = None  # with planned actions, each frame's commit rides on the next frame's first pass
            for i in range(horizon):
                a = acts[i] if acts is not None else self._chunk(self.act(), "policy chunk")
                if self.use_cache and acts is not None:
                    codes = sample_frame(self.dyn, self.embodiment, a[None], self.cache, steps=self.mask_steps,
                                         temperature=self.temperature, gen=self.gen, pending=pending)
                    pending = (codes, a[None])
                elif self.use_cache:  # policy-planned: act() must see the frame just imagined
                    codes = sample_frame(self.dyn, self.embodiment, a[None], self.cache, steps=self.mask_steps,
                                         temperature=self.temperature, gen=self.gen)
                    self._commit(codes, a)
                else:
                    ctx = self._context()
                    codes = sample_frame(self.dyn, self.embodiment, a[None], None, context=ctx,
                                         steps=self.mask_steps, temperature=self.temperature, gen=self.gen)
                    self.codes = (self.codes + [codes[0]])[-(self.window - 1):]
                    self.actions = (self.actions + [a])[-(self.window - 1):]
                    self.steps += 1
                out.append(codes)
            frames = self.tok.decode(torch.cat(out))
            if self.render == "residual" and self._newest is not None:
                real, real_codes = self._newest
                frames = render_residual(frames, real, self.tok.decode(real_codes)[0])
        finally:
            self.cache.restore(snap)
            self.codes, self.actions, self.steps, self._newest = codes_hist, act_hist, steps, newest
        self.latency["imagine_ms"] = 1e3 * (time.perf_counter() - t)
        self.latency["imagine_ms_per_frame"] = self.latency["imagine_ms"] / max(1, horizon)
        return frames.cpu().numpy()

    def _context(self):
        codes = torch.stack(self.codes)[None]  # (1, Tp, S, K)
        acts = [a if a is not None else torch.zeros(self.stride, self.action_dim, device=self.device)
                for a in self.actions]
        return codes, torch.stack(acts)[None]

    @torch.no_grad()
    def act(self, samples: int = 1, temperature: float | None = None) -> np.ndarray:
        """The policy head's next action chunk (stride, action_dim), in the embodiment's units.
        MAR (diffusion) heads: one DDIM sample at `temperature` (default: the model's), or the
        mean of `samples` of them. The discrete model's regression head ignores both."""
        if self.steps == 0:
            raise RuntimeError("act() needs at least one observe() first")
        t = time.perf_counter()
        S = self.dyn.cfg.tokens_per_frame
        K = self.dyn.cfg.token_dim if self.dyn.continuous else len(self.dyn.cfg.levels)
        snap = self.cache.snapshot()
        try:
            codes = torch.zeros(1, 1, S, K, dtype=torch.float32 if self.dyn.continuous else torch.long,
                                device=self.device)
            masked = torch.ones(1, 1, S, dtype=torch.bool, device=self.device)
            a = torch.zeros(1, 1, self.stride, self.action_dim, device=self.device)
            am = torch.ones(1, 1, dtype=torch.bool, device=self.device)
            _, feat, _ = self.dyn(self.embodiment, codes, masked, a, am, cache=self.cache, first_is_start=False)
            temp = self.temperature if temperature is None else temperature
            pred = self.dyn.predict_actions(self.embodiment, feat[:, 0], gen=self.gen, temperature=temp,
                                            samples=max(1, int(samples)))
        finally:
            self.cache.restore(snap)
        self.latency["act_ms"] = 1e3 * (time.perf_counter() - t)
        chunk = self.stem.denormalize(pred[0]).cpu().numpy().astype(np.float64)
        return chunk

    def describe(self) -> str:
        return f"{Path(self.name).name or 'model'} [{self.embodiment}]"
