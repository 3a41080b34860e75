r"""The comparison table: patient-grouped K-fold CV of several configs with the same seeds.

  python -m asd_jax.modes.compare --override train.num_steps=750 --out docs/results.md --workdir runs/compare \
    features cnn crossattn crossattn_no_prior crossattn_always_prior vit_phasemix crossattn_self_only \
    cnn_clip cnn_clip_angles stgcn:compact

Each config is `configs/<name>.py`, or `<name>:<variant>` for one of its variants (e.g. `stgcn:compact`);
its CV lives in `<workdir>/<name>_<variant>` (so an interrupted comparison resumes, and finished
models are not trained again). The tables, and a bar chart of patient-level macro-F1 and AUC in
`<out dir>/figures/<out stem>_patient.png`, are rewritten after every model. Extra `--override a.b=value` items apply to
every config. The Markdown document gets one table per level in the reference README's form,
mean ± std over folds with the 95% patient-bootstrap CI of the pooled test predictions.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import ml_collections

from asd_jax.base.files import write_atomically
from asd_jax.evaluation import plots, protocol, report
from asd_jax.modes import cv


def load_config(spec: str, overrides: list[str], variant: str | None = None) -> ml_collections.ConfigDict:
    """`spec` is `name` or `name:variant`; its own variant wins over the global `variant`."""
    name, _, own_variant = spec.partition(":")
    config = importlib.import_module(f"configs.{name}").get_config(own_variant or variant)
    for item in overrides:
        key, _, value = item.partition("=")
        parent = config
        *path, leaf = key.split(".")
        for part in path:
            parent = parent[part]
        parent[leaf] = type(parent[leaf])(json.loads(value) if not isinstance(parent[leaf], str) else value)
    return config


# New patients (cohort seed 1) seen differently: each fold-0 model is tested on them as they are.
EXTERNAL_COHORTS: dict[str, dict[str, float | int]] = {
    "other camera and detector": {"seed": 1, "body_px_min": 200.0, "body_px_max": 450.0, "jitter_px": 4.0,
                                  "dropout_rate": 0.04, "tilt_deg_std": 4.0},
    "no rater annotations": {"seed": 1, "rater_coverage": 0.0},
}


def external_checks(config: ml_collections.ConfigDict, fold_dir: Path) -> tuple[dict[str, float], int]:
    """Patient macro-F1 of the fold's model on each EXTERNAL_COHORTS cohort (reports kept in the
    fold), and how many patients they hold (one seed, so the same for every cohort)."""
    scores, patients = {}, 0
    for index, (name, changes) in enumerate(EXTERNAL_COHORTS.items()):
        report_dir = fold_dir / f"report_external_{index}"
        if (report_dir / "results.json").exists():
            payload = json.loads((report_dir / "results.json").read_text())
        else:
            shifted = config.copy_and_resolve_references()
            shifted.data.synthetic.update(changes)
            payload = protocol.evaluate_external(shifted, fold_dir, report_dir)
        scores[name], patients = payload["headline"]["patient_macro_f1"], payload["test_patients"]
    return scores, patients


def compare(
    names: list[str], workdir: Path, overrides: list[str], variant: str | None = None, on_model_done=None
) -> dict[str, dict]:
    """Runs (or resumes) CV for every config, then tests its fold-0 model on EXTERNAL_COHORTS;
    returns each one's summary levels (with an `external` entry).

    `on_model_done(results_so_far)` runs after each model, so a comparison that takes hours shows
    its table growing and an interrupted one keeps what it finished.
    """
    results = {}
    for name in names:
        run_dir = workdir / name.replace(":", "_")
        config = load_config(name, overrides, variant)
        results[name] = dict(cv.run_cv(config, run_dir)["levels"])
        if config.data.source == "synthetic":  # shifted cohorts exist for the synthetic data only
            results[name]["external"], results[name]["external_patients"] = external_checks(config, run_dir / "fold_0")
        if on_model_done is not None:
            on_model_done(results)
    return results


READING_HEADING = "## Reading"


def level_rows(results: dict[str, dict], level: str) -> list[tuple[str, dict]]:
    return [(name, {k: v for k, v in levels[level].items() if k not in report.POOLED_ROWS}) for name, levels in results.items()]


def results_markdown(results: dict[str, dict], command: str, reading: str = "", figure: str = "") -> str:
    """The tables (and `figure`, a relative image path); `reading` (a hand-written section
    starting with READING_HEADING) is kept below them."""
    sections = [
        "# Model comparison",
        "",
        f"Command: `{command}`",
        "",
        "Cells: mean ± std over the test folds [95% CI, patient bootstrap of the pooled test predictions]. "
        "Every fold's checkpoint was chosen on its validation patients; every test fold was evaluated once.",
        "",
    ]
    if figure:
        sections += [f"![patient-level macro-F1 and AUC per model, 95% CI as error bars]({figure})", ""]
    for level in ("patient", "clip"):
        sections += [f"## {level.capitalize()} level", "", report.markdown_table(level_rows(results, level)), ""]
    sections += external_table(results)
    return "\n".join(sections) + (f"\n{reading}" if reading else "")


def external_table(results: dict[str, dict]) -> list[str]:
    """Patient macro-F1: CV (mean over folds) beside the fold-0 model on each external cohort."""
    rows = {name: levels["external"] for name, levels in results.items() if "external" in levels}
    if not rows:
        return []
    cohorts = list(EXTERNAL_COHORTS)
    patients = max(results[name]["external_patients"] for name in rows)
    lines = [
        "## New patients, seen differently",
        "",
        f"Patient-level macro-F1 of each fold-0 model on {patients} new patients (cohort seed 1) as they are: "
        + "; ".join(f"*{name}*: `{changes}`" for name, changes in EXTERNAL_COHORTS.items())
        + ". Beside it, the model's CV mean.",
        "",
        "| Model | CV | " + " | ".join(cohorts) + " |",
        "| --- | --- |" + " --- |" * len(cohorts),
    ]
    for name, scores in rows.items():
        cv_score = results[name]["patient"]["metrics"]["macro_f1"]
        lines.append(f"| {name} | {cv_score:.3f} | " + " | ".join(f"{scores[c]:.3f}" for c in cohorts) + " |")
    return lines + [""]


def existing_reading(path: Path) -> str:
    """The hand-written reading of an earlier run of the document, so regenerating keeps it."""
    if not path.exists():
        return ""
    text = path.read_text()
    start = text.find(READING_HEADING)
    return text[start:] if start >= 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config names under configs/")
    parser.add_argument("--workdir", type=Path, default=Path("runs/compare"))
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--override", action="append", default=[], help="a.b=value, applied to every config")
    parser.add_argument("--variant", default=None, help="config variant, e.g. smoke")
    args = parser.parse_args()
    command = "python -m asd_jax.modes.compare " + " ".join(
        [f"--override {o}" for o in args.override]
        + ([f"--variant {args.variant}"] if args.variant else [])
        + [f"--out {args.out}", f"--workdir {args.workdir}"]
        + args.configs
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)

    reading = existing_reading(args.out)
    figure = args.out.parent / "figures" / f"{args.out.stem}_patient.png"

    def write(results: dict[str, dict]) -> None:
        plots.model_comparison(level_rows(results, "patient"), figure, "patient level")
        write_atomically(args.out, results_markdown(results, command, reading, figure.relative_to(args.out.parent).as_posix()))

    compare(args.configs, args.workdir, args.override, args.variant, on_model_done=write)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
