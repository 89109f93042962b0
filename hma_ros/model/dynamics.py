"""The HMA dynamics model: per-embodiment stems and heads around one shared trunk.

Tokens per frame slot t: S image tokens (an FSQ code vector each, or a mask token) plus, when
the conditioning concatenates, one action token. The action attached to slot t is the chunk
that LEADS INTO frame t (a_{t-1}); slot 0 gets a learned "no action yet" embedding.

The parts, as the paper draws them: `Stem` (per embodiment, action chunk -> feature), the
`Conditioning` (how that feature enters the trunk: the variants of Fig. 5b, "modulate+concat"
(default), "modulate", "concat", "add", "cross", "none" = a passive video model), the `Trunk`
of `Block`s -- `SpatialAttention` within a slot -> (`CrossAttention` to action tokens, for that
variant) -> `TemporalAttention`, causal per token position (rotary positions, so a KV cache
can slide) -> MLP, every sub-layer modulated adaLN-Zero style by the slot's condition c_t --
and the token head (model/tokens.py) and per-embodiment action `Head`. `HMADynamics` wires them.
Checkpoints saved before the parts had names load through `current_name`.
Shapes: B batch, T slots, S tokens per slot (+1 action token), D width, K FSQ factors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hma_ros.model.tokens import TOKEN_KINDS

CONDITIONINGS = ("modulate+concat", "modulate", "concat", "add", "cross", "none")
OBJECTIVES = ("forward", "passive", "full", "policy")
# settings older checkpoints kept in DynamicsConfig; now how the model is trained (LossConfig)
LEGACY_TRAINING_KEYS = ("mask_min_ratio", "label_smoothing", "corrupt_prob", "motion_weight", "policy_prob",
                        "where_weight")
ACTION_ENCODINGS = ("mlp", "fourier")


@dataclass
class DynamicsConfig:
    d_model: int = 192
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: float = 4.0
    window: int = 12
    prompt: int = 4
    tokens_per_frame: int = 64
    levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    conditioning: str = "modulate+concat"
    objective: str = "forward"
    cross_tokens: int = 4
    action_encoding: str = "mlp"  # stems: "mlp" on normalized chunks | "fourier" features first (binds positions)
    fourier_bands: int = 6  # "fourier": octaves per action value
    action_points: int = 0  # > 0: each stem also places this many learned 2-D points; their heatmaps
    # on the token grid are added to the slot's image tokens (ActionMap: binds an action to where it acts)
    factor_ar: int = 0  # discrete: > 0 = width of the intra-token steps (each FSQ factor's logits see
    # the factors before it: a token is drawn as one code, model/tokens.py); 0 = independent factors
    token_kind: str = "discrete"  # "discrete" (FSQ codes, MaskGIT) | "continuous" (soft tokens, MAR)
    token_dim: int = 8  # continuous: channels per soft token
    diff_width: int = 256  # MAR diffusion heads (tokens and actions)
    diff_depth: int = 3
    ddim_steps: int = 10
    ddim_clip: float = 3.0

    def __post_init__(self):
        self.levels = tuple(self.levels)
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "passive":
            self.conditioning = "none"
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        if self.token_kind not in ("discrete", "continuous"):
            raise ValueError(f"token_kind must be 'discrete' or 'continuous', got {self.token_kind!r}")
        if self.action_encoding not in ACTION_ENCODINGS:
            raise ValueError(f"action_encoding must be one of {ACTION_ENCODINGS}, got {self.action_encoding!r}")
        if self.action_points < 0:
            raise ValueError(f"action_points must be >= 0, got {self.action_points}")
        if self.factor_ar < 0:
            raise ValueError(f"factor_ar must be >= 0, got {self.factor_ar}")
        if self.factor_ar and self.token_kind == "continuous":
            raise ValueError("factor_ar applies to discrete tokens only (a soft token has no factors)")

    @property
    def concat(self) -> bool:
        return self.conditioning in ("modulate+concat", "concat")

    @property
    def modulate(self) -> bool:
        return self.conditioning in ("modulate+concat", "modulate")

    @property
    def slot_tokens(self) -> int:
        return self.tokens_per_frame + (1 if self.concat else 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["levels"] = list(self.levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DynamicsConfig:
        """From a checkpoint's `dynamics` section; training settings that older checkpoints kept
        here (now LossConfig, model/maskgit.py) are left out."""
        return cls(**{k: v for k, v in d.items() if k not in LEGACY_TRAINING_KEYS})


def xavier_(linear: nn.Linear, gain: float) -> nn.Linear:
    nn.init.xavier_uniform_(linear.weight, gain=gain)
    nn.init.zeros_(linear.bias)
    return linear


class Stem(nn.Module):
    """Per-embodiment action encoder: normalize (stats from the training data) -> MLP.

    With `fourier_bands` > 0 each normalized value x also enters as sin/cos(2^k * pi/4 * x),
    k < bands (NeRF-style features): where an action is a position (PushT's PD target), a
    linear layer over these can light up the image positions near it -- a map a small MLP on the
    raw values learns slowly. Normalized actions lie within about +-2 std, so the lowest band's
    period (8 std) is unambiguous over the range and the highest resolves ~1/16 of a std."""

    def __init__(self, stride: int, action_dim: int, d: int, mean, std, fourier_bands: int = 0,
                 points: int = 0):
        super().__init__()
        self.stride, self.action_dim = stride, action_dim
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(action_dim))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(action_dim))
        self.register_buffer("freqs", (math.pi / 4) * 2.0 ** torch.arange(fourier_bands, dtype=torch.float32),
                             persistent=False)
        n_in = stride * action_dim * (1 + 2 * fourier_bands)
        self.net = nn.Sequential(xavier_(nn.Linear(n_in, d), 0.1), nn.SiLU(), xavier_(nn.Linear(d, d), 0.1))
        # where the action acts: a linear map of the normalized chunk to points on the image plane
        # ([-1, 1]^2); a position command (PushT's PD target) maps to the agent's place exactly
        self.points = xavier_(nn.Linear(stride * action_dim, 2 * points), 0.5) if points else None

    def normalize(self, chunk: torch.Tensor) -> torch.Tensor:  # (..., stride, dim) -> same
        return (chunk - self.mean) / self.std

    def denormalize(self, chunk: torch.Tensor) -> torch.Tensor:
        return chunk * self.std + self.mean

    def features(self, norm_chunk: torch.Tensor) -> torch.Tensor:  # (..., stride, dim) -> (..., F)
        x = norm_chunk.flatten(-2)
        if not len(self.freqs):
            return x
        ang = x[..., None] * self.freqs  # (..., stride*dim, bands)
        return torch.cat([x, ang.sin().flatten(-2), ang.cos().flatten(-2)], dim=-1)

    def forward(self, norm_chunk: torch.Tensor) -> torch.Tensor:  # (B, T, stride, dim) -> (B, T, D)
        """In fp32 also under autocast: a few rows through two small layers, where autocast's
        casts cost more than the products (~70 us a layer on a CPU in bf16, a few in fp32)."""
        with torch.autocast(norm_chunk.device.type, enabled=False):
            return self.net(self.features(norm_chunk.float()))

    def place(self, norm_chunk: torch.Tensor) -> torch.Tensor:  # (B, T, stride, dim) -> (B, T, P, 2)
        return self.points(norm_chunk.flatten(-2)).unflatten(-1, (-1, 2))


class StateHead(nn.Module):
    """Training only: from a slot's image-token features, the change of the scene's recorded
    state (a dataset's `state` columns, e.g. PushT's block pose) since the previous frame,
    normalized by the training data's statistics (buffers, as the stems'). The frames never read
    it; it gives the trunk a dense target for what the tokens' cross-entropy signals weakly --
    where a pushed object goes (`LossConfig.state_weight`)."""

    def __init__(self, tokens: int, d: int, dim: int, mean, std, width: int = 16):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.per_token = nn.Linear(d, width)
        self.out = nn.Linear(tokens * width, dim)  # position-specific: where a feature is matters
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # (B, T, S, D) -> (B, T, dim), normalized
        h = self.per_token(self.norm(img))
        return self.out(h.flatten(2))

    def target(self, states: torch.Tensor) -> torch.Tensor:
        """states (B, T, dim) raw -> (B, T - 1, dim): each slot's change since the previous one, normalized."""
        return (states[:, 1:] - states[:, :-1] - self.mean) / self.std


class ActionMap(nn.Module):
    """Heatmaps of a stem's action points on the token grid, projected to the model width and
    added to that slot's image tokens (Gaussian keypoint maps, as keypoint models render them,
    here rendered from the command rather than detected in the image). Spatial attention alone
    must learn to route a global action vector to the tokens where the robot will be; a map
    puts the signal on those tokens. Two widths: a narrow one (about a token) to place, a wide
    one so the points get gradient from anywhere on the grid. The projection starts at zero, so
    adding the map to a trained model changes nothing until it learns.

    Learning the points only through the token loss is slow (the projection starts at zero and
    the points start anywhere: each waits for the other), so the map also has its own task:
    predict, from the heatmaps alone, which tokens change in the frame the action leads into
    (`where_logits`, trained against metrics.moving_tokens). That is "where does this action act"
    for any robot, and for a position command it pulls the points onto the place it commands."""

    SIGMAS = (0.15, 0.6)

    def __init__(self, points: int, tokens_per_frame: int, d: int):
        super().__init__()
        g = math.isqrt(tokens_per_frame)
        if g * g != tokens_per_frame:
            raise ValueError(f"action points need a square token grid, got {tokens_per_frame} tokens per frame")
        c = (torch.arange(g, dtype=torch.float32) + 0.5) / g * 2 - 1
        yy, xx = torch.meshgrid(c, c, indexing="ij")  # tokens row-major: index = row * g + col
        self.register_buffer("grid", torch.stack([xx.flatten(), yy.flatten()], -1), persistent=False)  # (S, 2)
        self.proj = nn.Linear(points * len(self.SIGMAS), d)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.where = nn.Linear(points * len(self.SIGMAS), 1)

    def heatmaps(self, pts: torch.Tensor) -> torch.Tensor:  # (B, T, P, 2) -> (B, T, S, P * widths)
        d2 = (self.grid[:, None, :] - pts[..., None, :, :]).square().sum(-1)  # (B, T, S, P)
        return torch.cat([torch.exp(-d2 / (2 * s * s)) for s in self.SIGMAS], dim=-1)

    def forward(self, pts: torch.Tensor) -> torch.Tensor:  # (B, T, P, 2) -> (B, T, S, D)
        return self.proj(self.heatmaps(pts))

    def where_logits(self, pts: torch.Tensor) -> torch.Tensor:  # (B, T, P, 2) -> (B, T, S)
        # non-negative weights: a point's heat can only say "changes here", so the (class-balanced)
        # loss pulls each point towards the tokens that change, never away from them
        w = F.softplus(self.where.weight)
        return (self.heatmaps(pts) @ w.t()).squeeze(-1) + self.where.bias


class Head(nn.Module):
    """Per-embodiment action decoder (regression, normalized units)."""

    def __init__(self, stride: int, action_dim: int, d: int):
        super().__init__()
        self.stride, self.action_dim = stride, action_dim
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(),
                                 xavier_(nn.Linear(d, stride * action_dim), 0.1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, stride, dim)
        return self.net(h).unflatten(-1, (self.stride, self.action_dim))


def rope_tables(pos: torch.Tensor, dh: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary angles' (cos, sin), float32 (T, Dh/2), at integer positions pos (T,): computed once
    per forward and shared by every layer (they depend on the positions alone)."""
    inv = 1.0 / (10000 ** (torch.arange(0, dh, 2, device=pos.device, dtype=torch.float32) / dh))
    ang = pos.to(torch.float32)[:, None] * inv[None]  # (T, Dh/2)
    return ang.cos(), ang.sin()


def rotary(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotary embedding over the last dim of x (..., T, Dh) with `rope_tables` of its positions."""
    cos, sin = (t.to(x.dtype) for t in rope)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """LayerNorm without affine (eps 1e-5), then adaLN's modulation: norm(x) * (1 + scale) + shift."""
    return F.layer_norm(x, x.shape[-1:]) * (1 + scale) + shift


def gated_residual(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + gate * y (adaLN-Zero's gated residual)."""
    return x + gate * y


def rotary_qk(q: torch.Tensor, k: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor]:
    return rotary(q, rope), rotary(k, rope)


class _Attention(nn.Module):
    """Multi-head self-attention's projections: qkv in, out."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.h = heads
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)


class SpatialAttention(_Attention):
    """Bidirectional attention among the tokens of one slot (one frame and its action token)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, S', D) -> same
        B, T, S, D = h.shape
        q, k, v = (_heads(t, self.h) for t in self.qkv(h.reshape(B * T, S, D)).chunk(3, dim=-1))
        a = plain_attention(q, k, v) if _plain_on_cpu(q) else F.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).reshape(B, T, S, D))


def _plain_on_cpu(q: torch.Tensor) -> bool:
    """True where a CPU run writes the attention out as plain products (`plain_attention`,
    `short_attention`) instead of PyTorch's fused kernel:
    - while torch.compile traces a block for a CPU: inductor fuses the products with the block's
      other steps. The fused kernel at these sizes (65 tokens, or 1-2 queries over <= 14 keys, per
      head) cost 22% of a compiled bf16 imagined frame on 2 cores; written out, the compiled
      blocks went 47.5 -> 67.3 imagined frames/s in one run each (docs/architecture.md);
    - in bf16 training (autocast, gradients): the fused kernel's bf16 backward took 6x its fp32
      time (42% of a batch-8 step of `hma_discrete_moves`, one thread), which is why `hma train
      --precision bf16` gained nothing on a CPU with bf16 units; written out, a step takes 1.02 s
      against fp32's 1.59 (docs/architecture.md, "Training on a CPU").
    Eager inference and fp32 training keep the fused kernel (writing it out there changed nothing
    measurable, or was slower). The same function either way (test_model checks both)."""
    if q.is_cuda:
        return False
    return torch.compiler.is_compiling() or (q.requires_grad and q.dtype == torch.bfloat16)


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(Dh)) v as plain products: F.scaled_dot_product_attention without a
    mask, for compiled CPU blocks and bf16 CPU training (`_plain_on_cpu`)."""
    return torch.softmax((q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5), dim=-1) @ v


def short_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(Dh), masked) v as plain batched products: for the temporal attention
    on a GPU, where each of the B*S'*H rows has 1-2 queries over at most window+2 keys.
    PyTorch's fused kernel runs such rows in 64x64 tiles: 79 us a call, 46% of an HMA-Base
    imagined frame's GPU time (H100, fp32); these five small kernels take a few us each. The
    same function as F.scaled_dot_product_attention (test_model checks it on the CPU)."""
    s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    return torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v


class TemporalAttention(_Attention):
    """Causal attention along time, per token position, with rotary positions (so cached keys
    keep their meaning): slot t sees slots <= t, the cached ones (KVCache) first. On a GPU, in
    compiled CPU blocks and in bf16 CPU training (`_plain_on_cpu`), the attention itself is
    `short_attention`; elsewhere on a CPU the fused kernel."""

    def forward(self, h: torch.Tensor, rope, mask: torch.Tensor, past=None):
        """h (B, T, S', D); rope: `rope_tables` of the T slots' positions; mask (T, keys) bool,
        True = may attend (`Trunk.attention_mask`); past: a layer's view of a KVCache or None.
        Returns (out, (k, v) of these T slots, (B*S', H, T, Dh))."""
        B, T, S, D = h.shape
        h = h.permute(0, 2, 1, 3).reshape(B * S, T, D)
        q, k, v = (_heads(t, self.h) for t in self.qkv(h).chunk(3, dim=-1))  # (B*S, H, T, Dh)
        q, k = rotary_qk(q, k, rope)
        new_kv = (k, v)
        if past is not None:  # the cached slots and these, without committing these
            k, v = past.extended(k, v)
        if q.is_cuda or _plain_on_cpu(q):
            a = short_attention(q, k, v, mask)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        a = a.transpose(1, 2).reshape(B, S, T, D).permute(0, 2, 1, 3)
        return self.out(a), new_kv


class CrossAttention(nn.Module):
    """The "cross" conditioning: a slot's tokens attend to its action tokens (output starts at zero)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:  # x (B, T, S', D), ctx (B, T, C, D)
        B, T, S, D = x.shape
        q = self.norm(x).reshape(B * T, S, D)
        kv = ctx.reshape(B * T, -1, D)
        return self.attn(q, kv, kv, need_weights=False)[0].reshape(B, T, S, D)


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:  # (N, L, D) -> (N, H, L, Dh)
    return x.unflatten(-1, (h, -1)).transpose(1, 2)


class Block(nn.Module):
    """spatial attention -> (cross-attention, "cross" only) -> causal temporal attention -> MLP,
    each sub-layer normalized and modulated adaLN-Zero style by the slot's condition c (`ada`:
    shift, scale and gate per sub-layer, starting at zero)."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        d = cfg.d_model
        self.spatial = SpatialAttention(d, cfg.n_heads)
        self.temporal = TemporalAttention(d, cfg.n_heads)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.ada = nn.Linear(d, 9 * d)  # shift/scale/gate for 3 sub-layers (adaLN-Zero)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.cross = CrossAttention(d, cfg.n_heads) if cfg.conditioning == "cross" else None

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope, mask: torch.Tensor, past=None,
                ctx: torch.Tensor | None = None):
        """x (B, T, S', D); c (B, T, D); rope, mask: the temporal positions' rotary tables and
        the causal mask (Trunk); past: the layer's view of a KVCache (earlier slots'
        keys/values, (B*S', H, Tp, Dh)) or None; ctx (B, T, C, D) action tokens ("cross").
        Returns (x, (k, v) of these T slots)."""
        sh1, sc1, g1, sh2, sc2, g2, sh3, sc3, g3 = self.ada(c)[:, :, None].chunk(9, dim=-1)
        x = gated_residual(x, g1, self.spatial(modulated_norm(x, sh1, sc1)))
        if self.cross is not None:
            x = x + self.cross(x, ctx)
        a, new_kv = self.temporal(modulated_norm(x, sh2, sc2), rope, mask, past)
        x = gated_residual(x, g2, a)
        x = gated_residual(x, g3, self.mlp(modulated_norm(x, sh3, sc3)))
        return x, new_kv


class _BufferView:
    """One layer's static-cache buffers as Block.forward attends through them (`extended`):
    what `block_step` builds inside the compiled region from tensors alone."""

    def __init__(self, kb: torch.Tensor, vb: torch.Tensor, pos: torch.Tensor):
        self.kb, self.vb, self.pos = kb, vb, pos

    def extended(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.kb.index_copy_(2, self.pos, k)  # StaticKVCache.extended, on the buffers themselves
        self.vb.index_copy_(2, self.pos, v)
        return self.kb, self.vb


def block_step(blk: Block, x, c, cos, sin, mask, kb, vb, pos):
    """One block's pass through a static KV cache, tensors in and out: the function
    `compiled_block_step` compiles once for every block (dynamo lifts the block's weights to
    inputs, so the 32 blocks of HMA-Base share one compiled graph per pass shape)."""
    return blk(x, c, (cos, sin), mask, _BufferView(kb, vb, pos))


_BLOCK_STEPS: dict[tuple, object] = {}  # (backend, mode, cpu) -> the compiled block_step (once per process)


def compiled_block_step(backend="inductor", mode: str | None = None, cpu: bool = False):
    """`block_step` through torch.compile (fullgraph): every elementwise step, cast, reshape and
    the masked softmax of a block fused between its matrix products (on a GPU at batch 1 a block
    is ~40 small kernels eager, and their count, not arithmetic, sets the time). The same
    computation; compiled on first use per pass shape, once per process. A StaticKVCache given it
    (`step=`) runs each block of its passes through it. mode: torch.compile's
    ("max-autotune-no-cudagraphs": Triton matrix products with the elementwise steps in their
    epilogues, minutes of tuning; not "reduce-overhead": StaticKVCache captures the graphs itself).
    cpu: for a CPU, where inductor's pattern matcher is left off (its attention patterns put the
    written-out spatial attention, `plain_attention`, back into the fused CPU kernel this
    avoids); with a mode, the mode's settings instead (torch.compile takes one or the other)."""
    key = (backend, mode, cpu)
    if key not in _BLOCK_STEPS:
        import torch._dynamo

        cfg = torch._dynamo.config  # one graph for every block, per pass shape and dtype
        cfg.cache_size_limit = max(getattr(cfg, "cache_size_limit", 8), 64)
        kw = {"options": {"pattern_matcher": False}} if cpu and mode is None and backend == "inductor" else {"mode": mode}
        _BLOCK_STEPS[key] = torch.compile(block_step, backend=backend, fullgraph=True, dynamic=False, **kw)
    return _BLOCK_STEPS[key]


class Trunk(nn.Module):
    """The shared spatial-temporal transformer: blocks, then a final norm."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.d_model)
        self.head_dim = cfg.d_model // cfg.n_heads

    def forward(self, x: torch.Tensor, c: torch.Tensor, pos: torch.Tensor, cache: KVCache | None = None,
                ctx: torch.Tensor | None = None):
        """x (B, T, S', D) at temporal positions pos (T,) -> (x, per-layer (k, v) of these T
        slots). The rotary tables and the causal mask are made once here for every layer."""
        rope = rope_tables(pos, self.head_dim)
        mask = self.attention_mask(x.shape[1], pos, cache)
        new = []
        step = cache.step if cache is not None and cache.static and ctx is None else None
        for i, blk in enumerate(self.blocks):
            if step is not None and cache.buf[i] is not None:  # its buffers exist (the eager first pass made them)
                x, kv = step(blk, x, c, rope[0], rope[1], mask, *cache.buf[i], pos)
            else:
                x, kv = blk(x, c, rope, mask, cache.layer(i) if cache is not None else None, ctx)
            new.append(kv)
        return self.norm_out(x), new

    @staticmethod
    def attention_mask(T: int, pos: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """(T, keys) bool: slot i of these T sees every cached slot and these up to itself."""
        if cache is not None and cache.static:  # keys: the whole buffer, slot j at position j
            return cache.keys[None] <= pos[:, None]
        tp = len(cache) if cache is not None else 0
        return torch.ones(T, tp + T, dtype=torch.bool, device=pos.device).tril(diagonal=tp)


class Conditioning(nn.Module):
    """How a slot's action feature (its stem's output) enters the trunk -- the paper's
    conditioning variants (Fig. 5b): "modulate" (it modulates every sub-layer, adaLN), "concat"
    (one more token in the slot), "modulate+concat" (both, the default), "add" (added to every
    image token), "cross" (image tokens cross-attend to `cross_tokens` tokens made from it),
    "none" (a passive video model: actions never enter)."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.kind, self.concat, self.modulate = cfg.conditioning, cfg.concat, cfg.modulate
        self.cross_tokens = cfg.cross_tokens
        self.bias = nn.Parameter(torch.zeros(cfg.d_model))  # the condition of a slot without modulation
        self.cross_proj = nn.Linear(cfg.d_model, cfg.cross_tokens * cfg.d_model) if self.kind == "cross" else None

    @property
    def uses_actions(self) -> bool:
        return self.kind != "none"

    def tokens(self, x: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Image tokens x (B, T, S, D) with the action added or appended -> (B, T, S', D)."""
        if self.kind == "add":
            x = x + act[:, :, None]
        if self.concat:
            x = torch.cat([x, act[:, :, None]], dim=2)
        return x

    def condition(self, act: torch.Tensor) -> torch.Tensor:
        """The per-slot modulation vector c (B, T, D)."""
        c = self.bias.expand(*act.shape[:2], -1)
        return c + act if self.modulate else c

    def context(self, act: torch.Tensor) -> torch.Tensor | None:
        """The action tokens (B, T, C, D) cross-attention reads ("cross"), else None."""
        return self.cross_proj(act).unflatten(-1, (self.cross_tokens, -1)) if self.cross_proj is not None else None


# state-dict names before the trunk had named parts (checkpoints and train states keep working)
_RENAMED = (("blocks.", "trunk.blocks."), ("norm_out.", "trunk.norm_out."), ("cond_bias", "conditioning.bias"),
            ("cross_proj.", "conditioning.cross_proj."), ("token_emb.", "tokens.token_emb."), ("out.", "tokens.out."),
            ("token_in.", "tokens.token_in."), ("token_head.", "tokens.token_head."))
_RENAMED_IN_BLOCK = ((".qkv_s.", ".spatial.qkv."), (".out_s.", ".spatial.out."), (".qkv_t.", ".temporal.qkv."),
                     (".out_t.", ".temporal.out."), (".norm_x.", ".cross.norm."), (".cross.", ".cross.attn."))


def current_name(name: str) -> str:
    """A dynamics parameter's name today, given its name in an older checkpoint (or today's)."""
    for old, new in _RENAMED:
        if name.startswith(old):
            name = new + name[len(old):]
            if old == "blocks.":
                for o, n in _RENAMED_IN_BLOCK:
                    if o in name:
                        name = name.replace(o, n, 1)
                        break
            break
    return name


class HMADynamics(nn.Module):
    """Trunk + per-embodiment stems/heads over FSQ token slots."""

    def __init__(self, cfg: DynamicsConfig, embodiments: dict[str, dict]):
        super().__init__()
        self.cfg = cfg
        d, K = cfg.d_model, len(cfg.levels)
        self.tokens = TOKEN_KINDS[cfg.token_kind](cfg, d)  # what a token is (model/tokens.py)
        self.mask_emb = nn.Parameter(torch.randn(d) * 0.02)
        self.pos_emb = nn.Parameter(torch.randn(cfg.slot_tokens, d) * 0.02)
        self.no_action = nn.Parameter(torch.randn(d) * 0.02)  # slot 0: no action led into it
        self.action_mask_emb = nn.Parameter(torch.randn(d) * 0.02)  # action to be predicted
        self.conditioning = Conditioning(cfg)
        self.trunk = Trunk(cfg)
        self.stems = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        self.action_map = ActionMap(cfg.action_points, cfg.tokens_per_frame, d) if cfg.action_points else None
        self.state_heads = nn.ModuleDict()  # training only (StateHead); embodiments whose record has "state"
        for name, e in embodiments.items():
            self.add_embodiment(name, e["stride"], e["action_dim"], e["stats"]["mean"], e["stats"]["std"])
            if "state" in e:
                self.add_state_head(name, e["state"])
        self.K = K

    def add_state_head(self, name: str, record: dict) -> None:
        """record: {"keys": [...], "mean": [...], "std": [...]} (state_record): the statistics of
        one step's change of each state column."""
        self.state_heads[name] = StateHead(self.cfg.tokens_per_frame, self.cfg.d_model, len(record["keys"]),
                                           record["mean"], record["std"])

    def add_embodiment(self, name: str, stride: int, action_dim: int, mean, std) -> None:
        d = self.cfg.d_model
        bands = self.cfg.fourier_bands if self.cfg.action_encoding == "fourier" else 0
        self.stems[name] = Stem(stride, action_dim, d, mean, std, bands, self.cfg.action_points)
        self.heads[name] = self.tokens.action_head(stride, action_dim, d)  # regression | diffusion

    @property
    def continuous(self) -> bool:
        return self.tokens.continuous

    def action_loss(self, emb: str, feat: torch.Tensor, target: torch.Tensor, gen=None) -> torch.Tensor:
        """feat (N, D) trunk features at action slots, target (N, stride, dim) normalized chunks."""
        return self.tokens.action_loss(self.heads[emb], feat, target, gen)

    def predict_actions(self, emb: str, feat: torch.Tensor, gen=None, temperature: float = 1.0,
                        samples: int = 1) -> torch.Tensor:
        """feat (N, D) -> normalized chunks (N, stride, dim) (tokens.predict_actions)."""
        stem = self.stems[emb]
        return self.tokens.predict_actions(self.heads[emb], feat, stem.stride, stem.action_dim, gen,
                                           temperature, samples)

    current_name = staticmethod(current_name)  # old checkpoint / train-state names -> today's

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # older checkpoints: token modules at the top level (before model/tokens.py), blocks
        # without named parts (before Trunk); their names are mapped to today's
        for k in [k for k in state_dict if k.startswith(prefix)]:
            now = current_name(k[len(prefix):])
            if now != k[len(prefix):]:
                state_dict[prefix + now] = state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ embedding
    def action_features(self, emb: str, actions: torch.Tensor | None, action_masked: torch.Tensor | None,
                        B: int, T: int, first_is_start: bool) -> torch.Tensor:
        """(B, T, D) per-slot action feature: stem(a_{t-1}), the 'predict me' embedding where
        masked, the 'no action' embedding for a window's first slot."""
        d = self.cfg.d_model
        if actions is None:
            f = self.action_mask_emb.expand(B, T, d)
        else:
            f = self.stems[emb](actions)
            if action_masked is not None:
                f = torch.where(action_masked[..., None], self.action_mask_emb.expand_as(f), f)
        if first_is_start:
            f = torch.cat([self.no_action.expand(B, 1, d), f[:, 1:]], dim=1)
        return f

    def embed(self, codes: torch.Tensor, token_masked: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """codes (B, T, S, K) long FSQ codes or (B, T, S, C) float soft tokens; token_masked
        (B, T, S) bool; act (B, T, D) -> (B, T, S', D)."""
        x = self.tokens.embed(codes)
        x = torch.where(token_masked[..., None], self.mask_emb.expand_as(x), x)
        return self.conditioning.tokens(x, act) + self.pos_emb

    def forward(self, emb: str, codes: torch.Tensor, token_masked: torch.Tensor,
                actions: torch.Tensor | None, action_masked: torch.Tensor | None = None,
                cache: KVCache | None = None, first_is_start: bool = True, features: bool = False):
        """codes (B, T, S, K); actions (B, T, stride, dim) normalized, slot t holding a_{t-1};
        with a cache, the T slots follow the cached ones. Returns (token output: discrete, a list
        of K logits (B, T, S, L_k); continuous, conditions z (B, T, S, D) for the diffusion head;
        action features (B, T, D) for the head (predict_actions / action_loss); per-layer (k, v)
        of the T slots[; with `features`, the image tokens' trunk output (B, T, S, D)])."""
        B, T = codes.shape[:2]
        cfg = self.cfg
        act = self.action_features(emb, actions, action_masked, B, T, first_is_start)
        x = self.embed(codes, token_masked, act)
        if self.action_map is not None and actions is not None:
            known = torch.ones(B, T, dtype=torch.bool, device=codes.device)
            if action_masked is not None:
                known = known & ~action_masked
            if first_is_start:
                known[:, 0] = False
            amap = self.action_map(self.stems[emb].place(actions)) * known[..., None, None]
            x[:, :, : cfg.tokens_per_frame] = x[:, :, : cfg.tokens_per_frame] + amap
        pos = cache.positions(T, codes.device) if cache is not None else torch.arange(T, device=codes.device)
        x, new = self.trunk(x, self.conditioning.condition(act), pos, cache, self.conditioning.context(act))
        img = x[:, :, : cfg.tokens_per_frame]
        out = self.tokens.head(img)
        pooled = x[:, :, -1] if cfg.concat else img.mean(dim=2)
        if features:
            return out, pooled, new, img
        return out, pooled, new


class KVCache:
    """Temporal keys/values of past slots, per layer, (B*S', H, T, Dh); slides at `max_slots`.

    Preallocated: each layer's keys and values live in one buffer with room past the committed
    slots, so a forward writes its slots' keys there and attends over a view (no copy of the
    whole cache per pass, which concatenating did: 1/10 of an imagined frame's CPU time). Only
    `append` commits; what a forward wrote beyond the committed length is scratch."""

    static = False  # StaticKVCache: fixed shapes, for CUDA graphs

    def __init__(self, n_layers: int, max_slots: int):
        self.buf: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers
        self.n = 0  # committed slots
        self.max_slots = max_slots
        self.next_pos = 0  # temporal position of the next slot (rotary: only differences matter)

    def __len__(self) -> int:
        return self.n

    def layer(self, i: int) -> _LayerCache | None:
        return _LayerCache(self, i) if self.n else None

    def positions(self, T: int, device) -> torch.Tensor:
        """(T,) temporal positions of the next T slots."""
        return torch.arange(self.next_pos, self.next_pos + T, device=device)

    def forward(self, model: HMADynamics, emb: str, codes: torch.Tensor, masked: torch.Tensor,
                actions: torch.Tensor | None, first_is_start: bool = False,
                action_masked: torch.Tensor | None = None):
        """model(...) over these slots after the cached ones (HMADynamics.forward's outputs): the
        call every prefill and cached sampling pass makes; StaticKVCache replays it as a CUDA graph."""
        return model(emb, codes, masked, actions, action_masked, cache=self, first_is_start=first_is_start)

    def _room(self, i: int, like: torch.Tensor, slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer i's buffers, with room for `slots` slots (allocated or grown, committed kept)."""
        have = self.buf[i]
        if have is not None and have[0].shape[2] >= slots and have[0].shape[:2] == like.shape[:2]:
            return have
        cap = max(slots, self.max_slots + 2)
        new = tuple(like.new_empty(like.shape[0], like.shape[1], cap, like.shape[3]) for _ in range(2))
        if have is not None and self.n:
            new[0][:, :, : self.n] = have[0][:, :, : self.n]
            new[1][:, :, : self.n] = have[1][:, :, : self.n]
        self.buf[i] = new
        return new

    def extended(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values of the committed slots followed by k, v (T new slots), as views."""
        n, T = self.n, k.shape[2]
        kb, vb = self._room(i, k, n + T)
        kb[:, :, n: n + T] = k
        vb[:, :, n: n + T] = v
        return kb[:, :, : n + T], vb[:, :, : n + T]

    def append(self, new: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Commit these slots' keys/values (per layer, (B*S', H, t, Dh)) after the cached ones."""
        t = new[0][0].shape[2]
        for i, (k, v) in enumerate(new):
            kb, vb = self._room(i, k, self.n + t)
            kb[:, :, self.n: self.n + t] = k
            vb[:, :, self.n: self.n + t] = v
        self.n += t
        self.next_pos += t
        if self.n > self.max_slots:  # slide: keep the newest max_slots
            drop = self.n - self.max_slots
            for kb, vb in self.buf:
                kb[:, :, : self.max_slots] = kb[:, :, drop: self.n].clone()
                vb[:, :, : self.max_slots] = vb[:, :, drop: self.n].clone()
            self.n = self.max_slots


def _capturing(device) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_current_stream_capturing()


class StaticKVCache(KVCache):
    """A KVCache of fixed shapes, so the cached sampling passes can be captured once as CUDA
    graphs and replayed (one launch instead of a kernel launch per op: at batch 1 a GPU is
    otherwise idle between the small kernels, and the time goes to the host).

    What differs from KVCache: the buffers hold `max_slots + 2` slots from the start (zeros) and
    are reused by every window (`reset`); slot j sits at index j, which is its temporal
    position (it never slides: a window restarts instead, as WorldModel does); a forward writes
    its slots' keys/values at their positions with `index_copy_` and attends over the whole
    buffer through a mask (keys at positions <= its own), so no shape depends on how many slots
    are cached; its positions are a device tensor filled before each pass. `append` commits
    what the last forward through this cache already wrote there (no copy).

    With `graphs` (a CUDA device), `forward` captures each pass shape -- the prefill of a
    window's first slots, the first unmasking pass with the pending slot (2 slots) and the later
    ones (1) -- the first time it meets it, and replays it after copying the inputs in. On a CPU
    (or graphs off) it runs the same computation eagerly: the tests run this path where there is
    no GPU."""

    static = True

    def __init__(self, n_layers: int, max_slots: int, device="cpu", graphs: bool = False, step=None):
        super().__init__(n_layers, max_slots)
        self.step = step  # compiled_block_step(): each block of a pass through it (None: eager blocks)
        self.capacity = max_slots + 2
        self.device = torch.device(device)
        self.keys = torch.arange(self.capacity, device=self.device)  # key j: position j
        self._steps: dict[int, torch.Tensor] = {}  # T -> arange(T)
        self._pos: dict[int, torch.Tensor] = {}  # T -> the positions of a T-slot pass
        self._written = 0  # slots the last forward wrote (committed + its own)
        self.graphs = bool(graphs) and self.device.type == "cuda"
        self._graphs: dict = {}
        self._pool = None

    def reset(self) -> None:
        """Empty (a new window); the buffers -- and the graphs that read them -- are kept."""
        self.n = self.next_pos = self._written = 0

    def layer(self, i: int) -> _LayerCache:
        return _LayerCache(self, i)  # also when empty: every pass writes its slots in place

    def positions(self, T: int, device=None) -> torch.Tensor:
        """The (T,) position tensor a T-slot pass reads, filled with n..n+T-1 (not while a graph
        is being captured: the replay reads what the latest fill wrote)."""
        if self.n + T > self.capacity:
            raise ValueError(f"a static KV cache holds {self.capacity} slots; {self.n} cached + {T} new "
                             "do not fit (restart the window)")
        if T not in self._pos:
            self._steps[T] = torch.arange(T, device=self.device)
            self._pos[T] = self._steps[T].clone()
        if not _capturing(self.device):
            torch.add(self._steps[T], self.n, out=self._pos[T])
        self._written = self.n + T
        return self._pos[T]

    def _room(self, i: int, like: torch.Tensor, slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        have = self.buf[i]
        if have is not None and have[0].shape[:2] == like.shape[:2] and have[0].dtype == like.dtype:
            return have
        if _capturing(self.device):
            raise RuntimeError("static KV cache: buffers must exist before a graph is captured")
        self.buf[i] = tuple(like.new_zeros(like.shape[0], like.shape[1], self.capacity, like.shape[3])
                            for _ in range(2))
        self._graphs.clear()  # they read the old buffers
        return self.buf[i]

    def extended(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes k, v (T new slots) at their positions; returns the whole buffers (the mask
        hides the slots past them)."""
        kb, vb = self._room(i, k, self.capacity)
        pos = self._pos[k.shape[2]]
        kb.index_copy_(2, pos, k)
        vb.index_copy_(2, pos, v)
        return kb, vb

    def append(self, new: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Commit the first t slots the last forward through this cache wrote (`new` are their
        keys/values, already in place)."""
        t = new[0][0].shape[2]
        if self.n + t > self._written:
            raise ValueError("a static KV cache commits only slots a forward through it wrote")
        self.n += t
        self.next_pos += t

    def forward(self, model, emb, codes, masked, actions, first_is_start: bool = False, action_masked=None):
        if not self.graphs:  # the same call as KVCache's, through this cache
            return super().forward(model, emb, codes, masked, actions, first_is_start, action_masked)
        T = codes.shape[1]
        self.positions(T)  # what this replay reads
        key = (T, tuple(codes.shape), codes.dtype, actions is None, action_masked is None, first_is_start)
        g = self._graphs.get(key)
        given = (codes, masked, actions, action_masked)
        if g is None:
            g = self._graphs[key] = self._capture(model, emb, given, first_is_start)
        else:
            for static, x in zip(g["inputs"], given, strict=True):
                if x is not None:
                    static.copy_(x)
            g["graph"].replay()
        return g["out"]

    def _capture(self, model, emb, given, first_is_start: bool) -> dict:
        """Warm the pass up on a side stream, capture it, replay it once (capturing runs
        nothing). Under autocast the capture re-enters it without the cast-weight cache, whose
        copies would not outlive the capture (PyTorch's rule for autocast in graphs)."""
        import contextlib

        inputs = tuple(None if x is None else x.clone() for x in given)

        def run():
            return model(emb, inputs[0], inputs[1], inputs[2], inputs[3], cache=self, first_is_start=first_is_start)

        ctx = contextlib.nullcontext()
        if torch.is_autocast_enabled("cuda"):
            ctx = torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), ctx:
            for _ in range(2):
                run()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool), ctx:
            out = run()
        self._pool = graph.pool()
        graph.replay()
        return {"graph": graph, "inputs": inputs, "out": out}


class _LayerCache:
    """One layer's view of a KVCache, what Block.forward attends through."""

    def __init__(self, cache: KVCache, i: int):
        self.cache, self.i = cache, i

    def extended(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cache.extended(self.i, k, v)
