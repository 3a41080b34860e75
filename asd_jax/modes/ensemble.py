r"""`python -m asd_jax.modes.ensemble`: fuse finished cross-validations into one ensemble's CV.

  python -m asd_jax.modes.ensemble --out runs/ensembles/cnn_streams \
    runs/explore/ccd_joints runs/explore/ccd_bones runs/explore/ccd_motion

Each member is a `--mode=cv` (or asd_jax.modes.compare) run folder of the same cohort, folds and
classes, e.g. one model per input stream (`--config.model.inputs=bones`) as pyskl ensembles its
joint, bone and motion streams, or models of different families. A clip's ensemble prediction is
the equal-weight mean of its members' class probabilities (asd_jax/evaluation/ensemble.py): no
weight is tuned, so no test patient picks anything. Writes `<out>/fold_<k>/report` and the pooled
`<out>/report` exactly as --mode=cv does, and prints the patient- and clip-level table.

New patients, diagnosed by several trained runs (e.g. one per training seed): give their
--mode=predict folders of the same clips instead, and the same fusion writes
`<out>/predictions_clips.csv` and `predictions_patients.csv` and prints the patients' table:

  for SEED in 0 1 2 3 4; do
    python launch.py --mode=predict --workdir runs/seed_$SEED --input new_patients/ --out predicted/seed_$SEED
  done
  python -m asd_jax.modes.ensemble --out predicted/fused predicted/seed_*
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asd_jax.base.errors import UserError, exit_with_error
from asd_jax.evaluation import ensemble, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m asd_jax.modes.ensemble", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("members", nargs="+", type=Path, help="finished --mode=cv run folders, or --mode=predict output folders")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's run folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient bootstrap behind the 95%% CIs (CVs only)")
    parser.add_argument("--bootstrap-samples", type=int, default=1000, help="resamples behind the 95%% CIs (CVs only)")
    args = parser.parse_args(argv)
    if args.bootstrap_samples < 1:
        parser.error(f"--bootstrap-samples={args.bootstrap_samples}: the 95% CIs need at least 1 resample")
    predicted = [ensemble.is_predicted(member) for member in args.members]
    try:
        missing = [str(m) for m in args.members if not m.is_dir()]
        if missing:
            raise UserError(f"{', '.join(missing)}: not found; give finished --mode=cv runs or --mode=predict output folders")
        if any(predicted):
            if not all(predicted):
                mixed = ", ".join(str(m) for m, p in zip(args.members, predicted) if not p)
                raise UserError(f"{mixed}: not a --mode=predict output folder; fuse predictions with predictions, CVs with CVs")
            fused = ensemble.fuse_predicted(args.members, args.out)
            print(report.patients_text(fused["patients"], fused["class_names"], fused["clips_per_patient"]))
            print(f"\nwritten to {args.out}")
            return
        summary = ensemble.run_ensemble(args.members, args.out, seed=args.seed, num_samples=args.bootstrap_samples)
    except UserError as err:
        exit_with_error(str(err))
    rows = [(f"{level} level", summary["levels"][level]) for level in ("patient", "clip")]
    print(report.markdown_table(rows))
    print(f"\nwritten to {args.out / 'report'}")


if __name__ == "__main__":
    main()
