"""The one place a device name becomes a torch.device: `hma train`, `hma train-tokenizer`,
`hma bench`, the WorldModel and the nodes' `device` parameter all go through `resolve_device`,
so every entry point refuses the same bad names with the same words."""

from __future__ import annotations


class DeviceError(ValueError):
    """A device that is not a device name, not supported, or not visible here."""


def resolve_device(name: str, what: str = "device"):
    """'cpu' or 'cuda[:N]' -> torch.device, checked before anything is loaded. `what` names the
    setting in the message (a flag, a node parameter). On CUDA, fp32 matmuls may use TF32."""
    import torch

    try:
        device = torch.device(str(name))
    except RuntimeError:
        raise DeviceError(f"{what} {name!r}: not a device name; use cpu or cuda (cuda:1 for the second GPU)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{what} {name}: no CUDA device is visible to torch here (torch {torch.__version__}); "
                              "use cpu, or install a CUDA build of torch on a machine with a GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{what} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, tf32 matmuls: the same model, faster
        torch.backends.cudnn.allow_tf32 = True
    elif device.type != "cpu":
        raise DeviceError(f"{what} {name}: only cpu and cuda are supported")
    return device


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of x86 CPUs that multiply bf16 natively


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512_BF16 or AMX), from /proc/cpuinfo's
    flags (or the given text): where `precision bf16` with `graphs` and `compile` imagines ~1.75x
    faster than fp32 (docs/architecture.md); elsewhere bf16 is emulated and slower. False where
    the flags cannot be read (not Linux x86)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in BF16_FLAGS for flag in line.split(":", 1)[-1].split())
    return False
