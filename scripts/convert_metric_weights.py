"""Convert the public weights of the learned metrics to the safetensors files `hma eval` reads.

    python scripts/convert_metric_weights.py --alexnet alexnet-owt-7be5be79.pth \
        --lpips-lin alex.pth --fid-inception pt_inception-2015-12-05-6726825d.pth --out weights/

- `--alexnet`: torchvision's ImageNet AlexNet (`alexnet-owt-7be5be79.pth`);
- `--lpips-lin`: LPIPS v0.1 linear layers for AlexNet (`lpips/weights/v0.1/alex.pth` of
  richzhang/PerceptualSimilarity);
- `--fid-inception`: pytorch-fid's FID Inception (`pt_inception-2015-12-05-6726825d.pth`).
Download them yourself (hma_ros never downloads). They are pickled PyTorch files: this script
opens them with torch.load(weights_only=True), which loads tensors and refuses code. It writes
`lpips_alex.safetensors` and `fid_inception.safetensors` into --out and checks that each fits
its network (hma_ros/evaluation/learned.py). Then: hma eval ... --lpips OUT --fid OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alexnet", help="torchvision AlexNet weights (.pth)")
    ap.add_argument("--lpips-lin", help="LPIPS v0.1 alex.pth (linear layers)")
    ap.add_argument("--fid-inception", help="pytorch-fid pt_inception-2015-12-05 weights (.pth)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch
    from safetensors.torch import save_file

    from hma_ros.evaluation.learned import LPIPS, FIDInception, MetricWeightsError

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def read(path):
        sd = torch.load(path, map_location="cpu", weights_only=True)
        return {k: v.contiguous() for k, v in sd.items() if torch.is_tensor(v)}

    try:
        if bool(args.alexnet) != bool(args.lpips_lin):
            ap.error("LPIPS needs both --alexnet and --lpips-lin")
        if args.alexnet:
            alex = {f"net.{k}": v for k, v in read(args.alexnet).items() if k.startswith("features.")}
            save_file(alex | read(args.lpips_lin), str(out / LPIPS.WEIGHTS))
            LPIPS.load(out / LPIPS.WEIGHTS)
            print(f"wrote {out / LPIPS.WEIGHTS}")
        if args.fid_inception:
            save_file(read(args.fid_inception), str(out / FIDInception.WEIGHTS))
            FIDInception.load(out / FIDInception.WEIGHTS)
            print(f"wrote {out / FIDInception.WEIGHTS}")
    except (OSError, RuntimeError, MetricWeightsError) as e:
        print(f"convert_metric_weights: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
