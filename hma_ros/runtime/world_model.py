"""WorldModel: the runtime API used by nodes, CLI, benchmarks and tests.

    wm = WorldModel.load("models/hma_discrete_small", embodiment="pusht")
    wm.reset()
    wm.observe(frame_uint8_HxWx3, action_chunk)   # action_chunk (stride, action_dim): the chunk
                                                  # that led INTO this frame (None for the first)
    frames = wm.imagine(future_chunks)            # (K, stride, action_dim) -> (K, H, W, 3) uint8
    chunk = wm.act()                              # next chunk (stride, action_dim), embodiment units

One 2 Hz step per observe() (it only encodes the frame). Each imagine()/act() computes its
temporal context afresh -- one window as trained: the newest `prompt` observed steps (act(): the
newest window-1), positions from 0, restarted from its newest `prompt` slots when a long rollout
fills it -- in one prefill pass; the window's keys/values are then cached, so imagining a frame
costs only that frame's tokens per unmasking step. Cached and recomputed paths are the same
computation after any number of observed steps (tested at 100).
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

import contextlib
import time
from pathlib import Path

import numpy as np
import torch

from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, sub_state
from hma_ros.model.dynamics import DynamicsConfig, HMADynamics, KVCache, StaticKVCache, compiled_block_step
from hma_ros.model.maskgit import UNMASK_ORDERS, sample_frame
from hma_ros.model.tokenizer import TokenizerConfig, build_tokenizer
from hma_ros.runtime import RENDER_MODES
from hma_ros.runtime.device import resolve_device

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
            dyn = HMADynamics(DynamicsConfig.from_dict(config["dynamics"]), config["embodiments"])
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


# compile: torch.compile modes for the blocks of the graphed passes (True: "default"); not the
# modes that capture CUDA graphs themselves: StaticKVCache captures whole passes
COMPILE_MODES = (False, True, "default", "max-autotune-no-cudagraphs")


def half_trunk(dynamics: HMADynamics, dtype: torch.dtype) -> HMADynamics:
    """A copy of `dynamics` whose trunk blocks' linear layers hold `dtype` weights: the values
    autocast casts them to on every call, cast once (under CUDA graphs autocast keeps no cast
    cache, so every pass re-cast every weight and bias, a kernel each). Under autocast the model
    computes the same numbers (test_model checks it)."""
    import copy

    half = copy.deepcopy(dynamics)
    for m in half.trunk.blocks.modules():
        if isinstance(m, torch.nn.Linear):
            m.to(dtype)
    return half


class WorldModel:
    def __init__(self, tokenizer, dynamics: HMADynamics, config: dict, embodiment: str,
                 device: str = "cpu", seed: int = 0, mask_steps: int = 2, temperature: float = 0.0,
                 use_cache: bool = True, name: str = "", render: str = "residual", where_temperature: float = 0.0,
                 where_tokens: int = 8, precision: str = "fp32", mask_order: str = "random", graphs: bool = False,
                 compile: bool = False):
        if embodiment not in config["embodiments"]:
            raise ValueError(f"checkpoint {name or ''} has no embodiment {embodiment!r}; it knows "
                             f"{', '.join(sorted(config['embodiments']))}. Finetune a new stem+head for it "
                             "(hma train --finetune) or pick one of these.")
        device = str(resolve_device(device))  # DeviceError (a ValueError) before anything moves
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
        if compile and not graphs:
            raise ValueError("compile applies to the fixed-shape cached passes: it needs graphs=True "
                             "(turn graphs on, or compile off)")
        if precision != "fp32":  # the trunk's matrices held in precision's dtype (a copy: the caller's stays)
            dynamics = half_trunk(dynamics, PRECISIONS[precision])
        self.tok, self.dyn = tokenizer.to(device), dynamics.to(device)
        self.config, self.embodiment, self.device = config, embodiment, device
        self.name = name
        e = config["embodiments"][embodiment]
        self.stride, self.action_dim = int(e["stride"]), int(e["action_dim"])
        self.image_size = tuple(config["tokenizer"]["resolution"] for _ in range(2))
        self.stem = self.dyn.stems[embodiment]
        self.mask_steps, self.temperature, self.use_cache = mask_steps, temperature, use_cache
        if mask_order not in UNMASK_ORDERS or (mask_order == "confidence" and self.dyn.continuous):
            raise ValueError(f"mask_order must be one of {UNMASK_ORDERS} ('confidence' needs a discrete-token "
                             f"model), got {mask_order!r}")
        self.mask_order = mask_order
        if render not in RENDER_MODES:
            raise ValueError(f"render must be one of {RENDER_MODES}, got {render!r}")
        self.render = render
        if where_temperature > 0 and (self.dyn.action_map is None or self.dyn.continuous):
            raise ValueError("where_temperature needs a discrete-token model with an action map (hma train --action-points)")
        self.where_temperature, self.where_tokens = where_temperature, where_tokens
        self.precision = precision  # autocast for the model calls: the same code path on CPU and GPU
        # graphs: the cached passes through fixed-shape KV caches (StaticKVCache), one per batch
        # size, captured as CUDA graphs on a CUDA device; elsewhere the same path runs eagerly
        self.graphs = bool(graphs)
        self._static: dict[int, StaticKVCache] = {}
        # compile: each block of the graphed passes as one compiled function; held by this world
        # model's static caches, so the model it was given stays as it was
        self.block_step = compiled_block_step(mode=None if compile in (True, "default") else compile,
                                              cpu=device == "cpu") if compile else None
        self.window = self.dyn.cfg.window
        # the real steps imagine() conditions on: the trained prompt, short of the window by one
        self.prompt = max(1, min(self.dyn.cfg.prompt, self.window - 1))
        self.latency: dict[str, float] = {}
        self.reset(seed)

    @classmethod
    def load(cls, checkpoint: str | Path, embodiment: str, device: str = "cpu", **kw) -> WorldModel:
        config, state = load_checkpoint(checkpoint)
        if "dynamics" not in config:
            raise CheckpointError(f"{checkpoint}: a tokenizer-only checkpoint; train dynamics with `hma train`")
        tok, dyn = build_models(config, state, str(checkpoint))
        return cls(tok, dyn, config, embodiment, device=device, name=str(checkpoint), **kw)

    def autocast(self):
        """Mixed precision for the model calls (weights stay fp32): torch.autocast on this
        device with `precision`'s dtype, or nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        # graphs: no cast-weight cache (its copies would not outlive a graph's capture)
        return torch.autocast(torch.device(self.device).type, dtype=PRECISIONS[self.precision],
                              cache_enabled=not self.graphs)

    # ------------------------------------------------------------------ state
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)
        # newest window-1 observed slots: (codes (1, S, K), normalized chunk into the frame or None)
        self.history: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.steps = 0
        self._newest: tuple[torch.Tensor, torch.Tensor] | None = None  # newest real frame, its codes

    def mean_chunk(self) -> np.ndarray:
        """(stride, action_dim) float32: the training data's mean action, held for a step -- the
        neutral chunk a warm-up or a benchmark feeds."""
        mean = np.asarray(self.config["embodiments"][self.embodiment]["stats"]["mean"], np.float32)
        return np.repeat(mean[None], self.stride, 0)

    def warm_up(self, horizon: int = 0, act: bool = False) -> float:
        """Meet every pass shape a robot's first steps will: observe 1, 2, ... blank steps (the
        stats' mean action), after each imagine `horizon` frames (0: none) and, with act, ask
        act(), then forget them (reset, same seed). imagine() prefills at most `prompt` slots,
        act() the whole history (up to window - 1), so act warms that many steps. With
        compile=True that compiles the blocks (tens of seconds on a CPU), with graphs on a GPU it
        captures the graphs, so the first real steps do not wait for it (the nodes call this in
        on_configure). Returns the seconds it took."""
        t = time.perf_counter()
        frame = np.zeros((*self.image_size, 3), np.uint8)
        chunk = self.mean_chunk()
        self.reset(self.seed)
        for t_ in range(self.window - 1 if act else self.prompt):
            self.observe(frame, chunk if t_ else None)
            if horizon > 0:
                self.imagine(np.repeat(chunk[None], horizon, 0))
            if act:
                self.act()
        self.reset(self.seed)
        return time.perf_counter() - t

    # ------------------------------------------------------------------ checks
    def _frame(self, frame) -> torch.Tensor:
        f = np.asarray(frame)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frame must be an (H, W, 3) uint8 RGB array, got {f.shape} {f.dtype}")
        if f.shape[:2] != self.image_size:
            from hma_ros.data.images import ImageSpec

            f = ImageSpec(size=self.image_size).prepare(f)
        return torch.from_numpy(np.require(f, requirements=("C", "W")))[None].to(self.device)  # a read-only view (memmap) is copied

    def _chunk(self, chunk, what: str = "action chunk") -> torch.Tensor:
        a = np.asarray(chunk, dtype=np.float32)
        if a.shape != (self.stride, self.action_dim):
            raise ValueError(f"{what} for {self.embodiment} must be ({self.stride}, {self.action_dim}) "
                             f"(stride x action_dim), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contains NaN or inf")
        return self.stem.normalize(torch.tensor(a, device=self.device))

    # ------------------------------------------------------------------ the temporal context
    # One definition for training, the cached runtime and the recomputed reference path: a
    # window of at most `window` slots whose first slot is a start (no action led into it),
    # temporal positions 0..window-1 -- exactly the windows the model was trained on.
    # imagine() opens it with the newest `prompt` observed steps; when a rollout fills it, it
    # restarts from its newest `prompt` slots. act() sees the newest window-1 observed steps (as
    # its head was trained, at a window's last slot). Every context is computed afresh (one
    # prefill pass over its slots), so no key carries context from before its window and
    # positions stay bounded however long a node runs (docs/architecture.md).
    def _context(self, slots, B: int = 1):
        """Context slots [(codes (1 or B, S, K), chunk (stride, dim) / (B, stride, dim) / None)] as
        (codes (B, T, S, K), normalized chunks (B, T, stride, dim), (B, T) 'unknown' mask)."""
        codes = torch.stack([c.expand(B, -1, -1) for c, _ in slots], dim=1)
        zero = torch.zeros(self.stride, self.action_dim, device=self.device)
        acts = torch.stack([(zero if a is None else a).expand(B, self.stride, self.action_dim) for _, a in slots], 1)
        unknown = torch.tensor([[a is None for _, a in slots]], device=self.device).expand(B, -1)
        return codes, acts, unknown

    def _prefill(self, slots, B: int = 1) -> KVCache:
        """A fresh cache over `slots` (see _context), the first one the start, for B futures
        (with graphs: this batch size's static cache, emptied)."""
        if self.graphs:
            cache = self._static.get(B)
            if cache is None:
                cache = self._static[B] = StaticKVCache(self.dyn.cfg.n_layers, self.window, self.device, graphs=True,
                                                            step=self.block_step)
            cache.reset()
        else:
            cache = KVCache(self.dyn.cfg.n_layers, self.window)
        if slots:
            codes, acts, unknown = self._context(slots, B)
            _, _, kv = cache.forward(self.dyn, self.embodiment, codes, torch.zeros(codes.shape[:3], dtype=torch.bool,
                                     device=self.device), acts, first_is_start=True, action_masked=unknown)
            cache.append(kv)
        return cache

    def _temperature(self, a: torch.Tensor | None):
        """The sampling temperature of the next frame's tokens: `temperature`, or -- with
        `where_temperature` > 0 and an action map -- that temperature at the `where_tokens` tokens
        the map ranks most likely to change (its where-head), so an uncertain moving part is sampled
        instead of averaged away by per-factor argmax, and `temperature` everywhere else. A rank,
        not a probability threshold: the where-head is trained class-balanced, so its
        probabilities are not calibrated (on PushT every token scores above 0.5), while its
        ranking is (the agent's next token is among its top 8 in 82% of test steps)."""
        if self.where_temperature <= 0 or a is None or self.dyn.action_map is None:
            return self.temperature
        logits = self.dyn.action_map.where_logits(self.stem.place(a[:, None]))[:, 0]  # (B, S)
        k = min(self.where_tokens, logits.shape[-1])
        temp = torch.full_like(logits, float(self.temperature))
        temp.scatter_(1, logits.topk(k, dim=-1).indices, float(self.where_temperature))
        return temp

    def _sample(self, slots, cache: KVCache | None, a: torch.Tensor, pending=None) -> torch.Tensor:
        """Codes (B, S, K) of the frame after `slots` given chunks a (B, stride, dim): through
        `cache` (which holds `slots`, but `pending`), or recomputing the whole context at every
        unmasking step."""
        kw = dict(steps=self.mask_steps, temperature=self._temperature(a), gen=self.gen, order=self.mask_order)
        if cache is not None:
            return sample_frame(self.dyn, self.embodiment, a, cache, pending=pending, **kw)
        context = self._context(slots, a.shape[0])
        return sample_frame(self.dyn, self.embodiment, a, None, context=context, **kw)

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def observe(self, frame, action_chunk=None) -> None:
        """Add one observed 2 Hz step: its frame and the action chunk that led into it."""
        t = time.perf_counter()
        x = self._frame(frame)
        a = self._chunk(action_chunk) if action_chunk is not None else None
        with self.autocast():
            codes = self.tok.encode(x)  # (1, S, K)
        self.history = (self.history + [(codes, a)])[-(self.window - 1):]
        self.steps += 1
        self._newest = (x[0], codes)
        self.latency["observe_ms"] = 1e3 * (time.perf_counter() - t)

    @torch.no_grad()
    def step(self, chunk) -> np.ndarray:
        """The world model as a simulator, one 2 Hz step: the frame (H, W, 3) that `chunk`
        (stride, dim) leads into, imagined and made the newest observed step with its tokens
        as drawn -- as imagine() carries its own frames forward -- where observe(frame) would
        encode the decoded frame again (a lossy round trip at every step of a long rollout)."""
        frame = self.imagine(np.asarray(chunk, np.float32)[None])[0]
        codes, a = self._drawn
        codes, a = codes.clone(), a[0].clone()  # (1, S, K), (stride, dim) as observe() keeps them; own memory
        self.history = (self.history + [(codes, a)])[-(self.window - 1):]
        self.steps += 1
        self._newest = (self._frame(frame)[0], codes)
        return frame

    @torch.no_grad()
    def imagine(self, future_chunks=None, horizon: int | None = None, start=None, tokens: bool = False) -> np.ndarray:
        """K imagined frames (K, H, W, 3) following the newest observed one. future_chunks
        (K, stride, dim) in embodiment units: chunk i leads into imagined frame i; or (B, K,
        stride, dim): B futures from the same history at once (e.g. candidate plans), frames
        (B, K, H, W, 3), one batched model call per unmasking step. With future_chunks None, the
        policy head plans: each chunk is act() on the imagined history (horizon K required).
        start=(frame, chunk) first observes one more real step temporarily (e.g. the newest
        camera frame, which no completed step holds yet). With tokens, the imagined tokens undecoded
        -- codes (K, S, F) int64, or soft tokens (K, S, D) float, (B, K, ...) batched -- as the
        decoder gets them (what `hma train-tokenizer --imagined` trains a decoder on). The history
        is left unchanged."""
        if self.steps == 0 and start is None:
            raise RuntimeError("imagine() needs at least one observe() first")
        acts, B, batched = None, 1, False
        if future_chunks is not None:
            fut = np.asarray(future_chunks, dtype=np.float32)
            if fut.ndim not in (3, 4) or fut.shape[0] == 0 or fut.shape[-3] == 0:
                raise ValueError(f"future_chunks must be (K, {self.stride}, {self.action_dim}) or (B, K, "
                                 f"{self.stride}, {self.action_dim}) with K, B >= 1, got {fut.shape}")
            batched = fut.ndim == 4
            fut = fut if batched else fut[None]
            B, horizon = fut.shape[:2]
            acts = [torch.stack([self._chunk(fut[b, i], f"future chunk {i}" + (f" of future {b}" if batched else ""))
                                 for b in range(B)]) for i in range(horizon)]
        elif not horizon or horizon < 1:
            raise ValueError("imagine(None) plans with the policy head and needs horizon >= 1")
        t = time.perf_counter()
        saved = (list(self.history), self.steps, self._newest)
        P = self.prompt
        try:
            if start is not None:
                self.observe(*start)
            frames = self._imagine(acts, horizon, P, B, decode=not tokens)
        finally:
            self.history, self.steps, self._newest = saved
        self.latency["imagine_ms"] = 1e3 * (time.perf_counter() - t)
        self.latency["imagine_ms_per_frame"] = self.latency["imagine_ms"] / max(1, horizon * B)
        return (frames if batched else frames[0]).cpu().numpy()

    def _imagine(self, acts, horizon: int, P: int, B: int, decode: bool = True) -> torch.Tensor:
        """Frames (B, K, H, W, 3) after the history (imagine() without the bookkeeping); without
        decode, their tokens (B, K, S, F)."""
        out = []
        with self.autocast():
            slots = list(self.history[-P:])  # the window so far
            cache = self._prefill(slots, B) if self.use_cache else None
            pending = None  # with a cache: the newest slot, committed by the next frame's first pass
            for i in range(horizon):
                if len(slots) >= self.window:  # the window is full: restart from its newest P slots
                    slots = slots[-P:]
                    cache = self._prefill(slots, B) if self.use_cache else None
                    pending = None
                if acts is not None:
                    a = acts[i]
                else:  # policy-planned: act() must see the frame just imagined
                    if cache is not None and pending is not None:
                        self._commit(cache, pending)
                        pending = None
                    a = self._chunk(self._act(slots, cache), "policy chunk")[None]
                codes = self._sample(slots, cache, a, pending)
                pending = (codes, a) if cache is not None else None
                slots.append((codes, a))
                out.append(codes)
            self._drawn = (codes, a)  # the last frame's tokens as drawn (step() keeps them)
            if not decode:
                return torch.stack(out, 1)
            frames = self.tok.decode(torch.stack(out, 1).flatten(0, 1))  # (B*K, H, W, 3)
            if self.render == "residual" and self._newest is not None:
                real, real_codes = self._newest
                frames = render_residual(frames, real, self.tok.decode(real_codes)[0])
        return frames.unflatten(0, (B, horizon))

    def _commit(self, cache: KVCache, pending) -> None:
        """Append one decided slot (codes (1, S, K), normalized chunk (1, stride, dim)) to `cache`."""
        codes, a = pending
        masked = torch.zeros(1, 1, codes.shape[1], dtype=torch.bool, device=self.device)
        _, _, kv = self.dyn(self.embodiment, codes[:, None], masked, a[:, None], None, cache=cache,
                            first_is_start=False)
        cache.append(kv)

    @torch.no_grad()
    def act(self, samples: int = 1, temperature: float | None = None) -> np.ndarray:
        """The policy head's next action chunk (stride, action_dim), in the embodiment's units,
        from the newest window-1 observed steps. MAR (diffusion) heads: one DDIM sample at
        `temperature` (default: the model's), or the mean of `samples` of them. The discrete
        model's regression head ignores both."""
        if self.steps == 0:
            raise RuntimeError("act() needs at least one observe() first")
        t = time.perf_counter()
        slots = list(self.history)
        with self.autocast():
            chunk = self._act(slots, self._prefill(slots) if self.use_cache else None, samples, temperature)
        self.latency["act_ms"] = 1e3 * (time.perf_counter() - t)
        return chunk

    def _act(self, slots, cache: KVCache | None, samples: int = 1, temperature: float | None = None) -> np.ndarray:
        """The head's chunk at a new slot (frame and action masked) after `slots`."""
        S = self.dyn.cfg.tokens_per_frame
        codes = self.dyn.tokens.blank(1, S, self.device)
        masked = torch.ones(1, 1, S, dtype=torch.bool, device=self.device)
        a = torch.zeros(1, 1, self.stride, self.action_dim, device=self.device)
        am = torch.ones(1, 1, dtype=torch.bool, device=self.device)
        if cache is not None:
            _, feat, _ = self.dyn(self.embodiment, codes, masked, a, am, cache=cache, first_is_start=False)
        else:  # the whole context recomputed
            past, acts, unknown = self._context(slots)
            _, feat, _ = self.dyn(self.embodiment, torch.cat([past, codes], 1),
                                  torch.cat([torch.zeros(past.shape[:3], dtype=torch.bool, device=self.device),
                                             masked], 1),
                                  torch.cat([acts, a], 1), torch.cat([unknown, am], 1))
            feat = feat[:, -1:]
        temp = self.temperature if temperature is None else temperature
        pred = self.dyn.predict_actions(self.embodiment, feat[:, 0], gen=self.gen, temperature=temp,
                                        samples=max(1, int(samples)))
        return self.stem.denormalize(pred[0]).cpu().numpy().astype(np.float64)

    def describe(self) -> str:
        return f"{Path(self.name).name or 'model'} [{self.embodiment}]"
