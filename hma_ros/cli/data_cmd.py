"""`hma data info DIR [--sheet out.png]`: what a dataset holds, and a contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    info = dsub.add_parser("info", help="summary of a dataset (or a folder of datasets)")
    info.add_argument("path")
    info.add_argument("--sheet", help="write a contact-sheet PNG of sample frames with action traces")
    info.set_defaults(func=run_info)


def _dataset_dirs(path: Path) -> list[Path]:
    if (path / "meta.json").is_file():
        return [path]
    return sorted(p.parent for p in path.glob("*/meta.json"))


def summary(ds) -> str:
    m = ds.meta
    valid = ds.valid()
    lens = [n for _, n in ds.episodes]
    st = m["stats"]
    lines = [
        f"{ds.path}  [{m['name']}]  format v{m['version']}, from {m['source']}",
        f"  episodes {len(ds.episodes)}  steps {len(ds)} (valid {int(valid.sum())}, "
        f"{100 * valid.mean():.1f}%)  episode length {min(lens)}..{max(lens)} steps",
        f"  actions: dim {m['action_dim']} at {m['action_hz']:g} Hz -> stride {m['stride']} per 2 Hz step; "
        f"frames {m['image_size'][0]}x{m['image_size'][1]}",
        "  action stats (per dim): mean " + np.array2string(np.array(st["mean"]), precision=3)
        + "  std " + np.array2string(np.array(st["std"]), precision=3),
        "                          min  " + np.array2string(np.array(st["min"]), precision=3)
        + "  max " + np.array2string(np.array(st["max"]), precision=3),
    ]
    if m["state_keys"]:
        lines.append(f"  simulator state per step: {', '.join(m['state_keys'])}")
    return "\n".join(lines)


def contact_sheet(ds, out: Path, episodes: int = 4, steps: int = 8) -> Path:
    """Rows of frames from a few episodes, each with the step's action chunk drawn beneath."""
    import cv2
    import imageio.v2 as imageio

    h, w = ds.meta["image_size"]
    st = ds.meta["stats"]
    lo, hi = np.array(st["min"]), np.array(st["max"])
    rows = []
    colours = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]
    for e in np.linspace(0, len(ds.episodes) - 1, min(episodes, len(ds.episodes))).astype(int):
        a, n = ds.episodes[e]
        cells = []
        for k in np.linspace(a, a + n - 1, min(steps, n)).astype(int):
            frame = np.array(ds.arrays["frames"][k])
            plot = np.full((h // 2, w, 3), 255, np.uint8)
            acts = ds.arrays["actions"][k]
            xs = np.linspace(0, w - 1, acts.shape[0]).astype(int)
            for d in range(acts.shape[1]):
                ys = ((1 - (acts[:, d] - lo[d]) / max(hi[d] - lo[d], 1e-9)) * (h // 2 - 1)).astype(int)
                pts = np.stack([xs, np.clip(ys, 0, h // 2 - 1)], 1).reshape(-1, 1, 2)
                cv2.polylines(plot, [pts.astype(np.int32)], False, colours[d % len(colours)], 1)
            cells.append(np.concatenate([frame, plot], 0))
            cells.append(np.full((h + h // 2, 2, 3), 255, np.uint8))
        rows.append(np.concatenate(cells, 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = np.concatenate(rows, 0)
    sheet = cv2.resize(sheet, (sheet.shape[1] * 2, sheet.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    imageio.imwrite(out, sheet)
    return out


def run_info(args) -> int:
    from hma_ros.cli import CliError
    from hma_ros.data.dataset import Dataset, DatasetError

    dirs = _dataset_dirs(Path(args.path))
    if not dirs:
        raise CliError(f"{args.path}: no dataset here (no meta.json in it or its subfolders)")
    for d in dirs:
        try:
            ds = Dataset(d)
        except DatasetError as e:
            raise CliError(str(e)) from None
        print(summary(ds))
        if args.sheet:
            out = Path(args.sheet)
            if len(dirs) > 1:
                out = out.with_name(f"{out.stem}_{ds.name}{out.suffix}")
            print(f"  contact sheet: {contact_sheet(ds, out)}")
    return 0
