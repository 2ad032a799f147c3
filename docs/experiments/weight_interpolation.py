"""The weight-interpolation experiment of encoder/MODEL_CARD.md (ablation, "Interpolating v1 and v3"), dev splits only.

Not part of ksearch: a record of how the card's figures were made. It writes a model folder whose weights are
`alpha x A + (1 - alpha) x B` for two models of the same architecture and vocabulary (WiSE-FT / model soups:
Wortsman et al. 2022), with A's tokenizer and settings; any `ksearch` command then takes it with `--model`:

    mkdir -p /tmp/v1 && git archive bdaf9b3 encoder/models/ksearch-ko-sparse | tar -x -C /tmp/v1 --strip-components=3
    .venv/bin/python docs/experiments/weight_interpolation.py --alpha 0.7 --other /tmp/v1 --out /tmp/v3-v1-0.7
    .venv/bin/ksearch eval --split dev --collection eval_data/ood-legal --model /tmp/v3-v1-0.7   # and the other two
    .venv/bin/ksearch eval-expansions --model /tmp/v3-v1-0.7

The folder has no ONNX graph, so it runs on torch (fp32, which the shipped graph equals).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "encoder" / "models" / "ksearch-ko-sparse"
SETTINGS = ("config.json", "ksearch.json", "tokenizer.json", "tokenizer_config.json", "training_recipe.json")


def interpolate(first: Path, other: Path, alpha: float, out: Path) -> None:
    """Write `out`: `first`'s folder with weights `alpha x first + (1 - alpha) x other` (same tensors required)."""
    from safetensors.torch import load_file, save_file

    a, b = load_file(first / "model.safetensors"), load_file(other / "model.safetensors")
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit(f"{first} and {other} do not have the same tensors: not one architecture")
    if (first / "tokenizer.json").read_bytes() != (other / "tokenizer.json").read_bytes():
        raise SystemExit(f"{first} and {other} have different vocabularies")
    out.mkdir(parents=True, exist_ok=True)
    for name in SETTINGS:
        if (first / name).exists():
            shutil.copy(first / name, out / name)
    mixed = {k: (alpha * a[k].float() + (1 - alpha) * b[k].float()).to(a[k].dtype) for k in a}
    save_file(mixed, out / "model.safetensors", metadata={"format": "pt"})
    print(f"wrote {out}: {alpha} x {first} + {1 - alpha:g} x {other}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, required=True, help="weight of the first model (above 1 extrapolates)")
    parser.add_argument("--first", type=Path, default=SHIPPED, help="default: the shipped model (v3)")
    parser.add_argument("--other", type=Path, required=True, help="e.g. v1 from `git archive bdaf9b3`")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    interpolate(args.first, args.other, args.alpha, args.out)


if __name__ == "__main__":
    main()
