"""python -m asd_jax.data.synthetic --out DIR [--num_patients N ...]: write a synthetic cohort folder."""

from __future__ import annotations

import argparse
import dataclasses
import time

from asd_jax.data.synthetic import CohortParams, generate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder to write the cohort into")
    for field in dataclasses.fields(CohortParams):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    args = vars(parser.parse_args())
    out = args.pop("out")
    start = time.perf_counter()
    params = CohortParams(**args)
    generate_cohort(out, params)
    print(f"wrote {params.num_clips} clips of {params.num_patients} patients to {out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
