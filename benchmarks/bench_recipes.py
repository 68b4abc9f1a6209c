"""Generation recipes side by side: how separable the jets are, and how fast they come.

    python benchmarks/bench_recipes.py --jets 20000 --workers 2 --out build/recipes

For each recipe variant the same number of jets is generated (cached in OUT/VARIANT.h5), a float
16-64-32-32-5 MLP is trained on each (benchmarks/float_mlp_baseline.py), and accuracy, per-class
one-vs-rest AUCs, the share of W and Z jets mMDT left with one prong (groomed mass below 50 GeV)
and jets per second per worker are printed beside the real data set's published accuracy
(75-76%: Hawks et al. 2021; the hls4ml tutorial's 0.750-0.764). The variants:
- hls4ml-lhc-jets, the default: longitudinal W/Z through the Les Houches hand-off;
- hls4ml-lhc-jets-isotropic: W/Z decayed isotropically by Pythia, as LHE bosons are;
- /in-process-decays: one Pythia, W/Z decayed with its ffbar -> VV matrix element's angles;
- /R0.8, /no-detector, /steer-cells (the steer script's other reading of the cells);
- particle-level: qapflow's first recipe, the baseline of the speed ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from qapflow.common.atomic import write_json
from qapflow.data.generate.detector import DetectorSettings
from qapflow.data.generate.processes import RECIPES
from qapflow.data.generate.runner import generate_dataset
from qapflow.data.schema import CLASSES, FEATURE_NAMES
from qapflow.data.sources import load_jets

sys.path.insert(0, str(Path(__file__).parent))
from float_mlp_baseline import train_float_mlp  # noqa: E402
from separability_limits import one_prong_bosons  # noqa: E402

HLS = RECIPES["hls4ml-lhc-jets"]
VARIANTS = {
    "hls4ml-lhc-jets": HLS,
    "hls4ml-lhc-jets-isotropic": RECIPES["hls4ml-lhc-jets-isotropic"],
    "hls4ml-lhc-jets/in-process-decays": dataclasses.replace(
        HLS, resonance_decays="in-process", resonance_mass_window_widths=None),
    "hls4ml-lhc-jets/R0.8": dataclasses.replace(HLS, jet_radius=0.8),
    "hls4ml-lhc-jets/no-detector": dataclasses.replace(HLS, detector=None),
    # steerScript.sh pairs the file tag r1_h022_e0175_t220_nonu, by position, with the
    # configuration r0.5:h0.010:e0.005:t220.0 (its commented-out list pairs it with r1.0:h0.022:
    # e0.0175:t220.0): the other reading of the ambiguous cells
    "hls4ml-lhc-jets/steer-cells": dataclasses.replace(
        HLS, detector=DetectorSettings(hcal_cell=0.010, ecal_cell=0.005, resolution_fudge=0.5)),
    "particle-level": RECIPES["particle-level"],
}
PUBLISHED_ACCURACY = "0.75-0.76"
ONE_PRONG_MASS_GEV = 50.0


def one_prong_share(jets) -> float:
    """Share of W and Z jets whose groomed mass is below ONE_PRONG_MASS_GEV."""
    boson = np.isin(jets.class_index, [CLASSES.index("w"), CLASSES.index("z")])
    mass = jets.features[:, FEATURE_NAMES.index("j_mass_mmdt")]
    return float(one_prong_bosons(jets.class_index, mass, ONE_PRONG_MASS_GEV).sum() / boson.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="build/recipes")
    ap.add_argument("--only", help="comma-separated variant names")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(VARIANTS)
    rows = {}
    for name in names:
        path = out / (name.replace("/", "_") + ".h5")
        timing = out / (path.stem + ".timing.json")
        if not path.exists():
            start = time.perf_counter()
            generate_dataset(path, args.jets, args.seed, args.workers, VARIANTS[name], progress=True)
            timing.write_text(json.dumps({"seconds": time.perf_counter() - start, "workers": args.workers}))
        t = json.loads(timing.read_text())
        jets = load_jets(path)
        r = train_float_mlp(jets, seed=args.seed)
        r["jets_per_second_per_worker"] = args.jets / t["seconds"] / t["workers"]
        r["one_prong_w_z"] = one_prong_share(jets)
        rows[name] = r
        print(f"{name}: accuracy {r['accuracy']:.4f}; AUC " + ", ".join(f"{c} {v:.4f}" for c, v in r["auc"].items())
              + f"; one-prong W/Z {r['one_prong_w_z']:.1%}; {r['jets_per_second_per_worker']:.1f} jets/s/worker",
              flush=True)
    write_json(out / "recipes.json", rows)
    print(f"\npublished (real data set): accuracy {PUBLISHED_ACCURACY}")
    base = rows.get("particle-level")
    for name, r in rows.items():
        speed = f", speed x{r['jets_per_second_per_worker'] / base['jets_per_second_per_worker']:.2f} of particle-level" if base else ""
        print(f"{name:55s} acc {r['accuracy']:.4f}{speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
