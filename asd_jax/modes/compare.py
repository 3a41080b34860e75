r"""The comparison table: patient-grouped K-fold CV of several configs with the same seeds.

  python -m asd_jax.modes.compare --override train.num_steps=750 --out docs/results.md --workdir runs/compare \
    features cnn crossattn crossattn_no_prior crossattn_always_prior vit_phasemix crossattn_self_only \
    cnn_clip cnn_clip_angles stgcn:compact

Each config is `configs/<name>.py`, or `<name>:<variant>` for one of its variants (e.g. `stgcn:compact`);
its CV lives in `<workdir>/<name>_<variant>` (so an interrupted comparison resumes, and finished
models are not trained again). With `--seeds 0,1,2` every config's CV is run once per training seed
(`<workdir>/<name>/seed_<s>`) and the document gives each model's mean and spread over the seeds,
and the patients most runs misdiagnose (asd_jax/evaluation/seeds.py): a single CV of a deep model
moves by about ±0.05 with the seed alone. The tables, and a bar chart of patient-level macro-F1 and AUC in
`<out dir>/figures/<out stem>_patient.png`, are rewritten after every model. Extra `--override a.b=value` items apply to
every config. The Markdown document gets one table per level in the reference README's form,
mean ± std over folds with the 95% patient-bootstrap CI of the pooled test predictions.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
from pathlib import Path

import ml_collections
import numpy as np

from asd_jax.base.errors import ConfigError, UserError, exit_with_error
from asd_jax.base.files import write_atomically
from asd_jax.data import dataset
from asd_jax.data.synthetic import CohortParams
from asd_jax.data.synthetic.cohort import sample_patients
from asd_jax.evaluation import plots, protocol, report, seeds
from asd_jax.modes import cv


def load_config(spec: str, overrides: list[str], variant: str | None = None) -> ml_collections.ConfigDict:
    """`spec` is `name` or `name:variant`; its own variant wins over the global `variant`."""
    name, _, own_variant = spec.partition(":")
    if not name.isidentifier():  # a path (configs/cnn.py) or a typo that is no module name
        raise ConfigError(f"{spec}: not a config name; give the name of configs/<name>.py, e.g. crossattn")
    try:
        module = importlib.import_module(f"configs.{name}")
    except ModuleNotFoundError as error:
        if error.name not in ("configs", f"configs.{name}"):
            raise
        raise ConfigError(f"{spec}: no such config (configs/{name}.py)") from None
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{spec}: configs/{name}.py has no get_config(), so it is not a config")
    config = module.get_config(own_variant or variant)
    for item in overrides:
        key, _, value = item.partition("=")
        parent = config
        *path, leaf = key.split(".")
        try:
            for part in path:
                parent = parent[part]
            current = parent[leaf]
        except (KeyError, TypeError) as error:  # TypeError: a path through a leaf (seed.x)
            hint = str(error.args[0]).splitlines()[-1] if "Did you mean" in str(error.args[0]) else ""
            raise ConfigError(f"--override {item}: {spec} has no field {key!r}. {hint}".strip()) from None
        parent[leaf] = override_value(item, current, value)
    return config


def override_value(item: str, current: object, text: str) -> object:
    """The value of `--override a.b=text` in the type of the field it replaces: JSON or a Python
    literal (`true` and `True`, `0.5`, `[1, 2]`), a string field taking the text as it is. A value
    of another type is refused in one line rather than converted (0.5 for an integer field would
    otherwise become 0)."""
    if isinstance(current, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ConfigError(f"--override {item}: cannot read {text!r} as a value") from None
    if current is None:
        return value
    expected = type(current)
    if expected in (tuple, list):
        fits = isinstance(value, (tuple, list))
    elif expected is bool or isinstance(value, bool):  # True is an int to Python, not to a config
        fits = expected is bool and isinstance(value, bool)
    else:
        fits = isinstance(value, expected) or (expected is float and isinstance(value, int))
    if not fits:
        raise ConfigError(f"--override {item}: expected {expected.__name__}, got {type(value).__name__} {text!r}")
    return expected(value)


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


def checked_cv(config: ml_collections.ConfigDict, run_dir: Path) -> dict:
    """The CV's summary levels, and for the synthetic cohort (the only one with shifted cohorts) its
    fold-0 model's EXTERNAL_COHORTS scores (`external`, `external_patients`)."""
    summary = cv.run_cv(config, run_dir)
    levels = dict(summary["levels"], class_names=summary["class_names"])
    if config.data.source == "synthetic":
        levels["external"], levels["external_patients"] = external_checks(config, run_dir / "fold_0")
    return levels


def compare(
    names: list[str],
    workdir: Path,
    overrides: list[str],
    variant: str | None = None,
    on_model_done=None,
    training_seeds: list[int] | None = None,
) -> dict[str, dict]:
    """Runs (or resumes) CV for every config, then tests its fold-0 model on EXTERNAL_COHORTS;
    returns each one's summary levels (with an `external` entry), or with `training_seeds` a
    {seed: levels} map per config, each seed's CV in `<workdir>/<name>/seed_<seed>`.

    `on_model_done(results_so_far)` runs after each model (each seed), so a comparison that takes
    hours shows its table growing and an interrupted one keeps what it finished.
    """
    results: dict[str, dict] = {}
    for name in names:
        run_dir = workdir / name.replace(":", "_")
        config = load_config(name, overrides, variant)
        if training_seeds is None:
            results[name] = checked_cv(config, run_dir)
            if on_model_done is not None:
                on_model_done(results)
            continue
        results[name] = {}
        for seed in training_seeds:
            seeded = config.copy_and_resolve_references()
            seeded.seed = seed
            results[name][seed] = checked_cv(seeded, run_dir / f"seed_{seed}")
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


def patient_notes(config: ml_collections.ConfigDict) -> dict[str, str]:
    """What the synthetic cohort knows of a patient and a clinic's folder does not: the walk's
    signature and its severity (0 is a normal walk), which tell a model's mistake from a walk that
    shows next to nothing of its disease. Empty for other data."""
    if config.data.source != "synthetic":
        return {}
    params = CohortParams.from_config(config.data.synthetic)
    patients = sample_patients(params, np.random.default_rng(params.seed))  # as generate_cohort draws them
    return {p.patient_id: f"{p.signature}, severity {p.severity:.2f}" for p in patients}


def _spread(values: dict[str, float]) -> str:
    return f"{values['mean']:.3f} ± {values['std']:.3f} [{values['min']:.3f}, {values['max']:.3f}]"


def seeds_markdown(
    results: dict[str, dict[int, dict]], command: str, notes: dict[str, str], reading: str = "", figure: str = ""
) -> str:
    """The seed table (mean ± std over seeds [min, max] of each CV's fold mean), the shifted
    cohorts' mean over the seeds' fold-0 models, and the patients at least half the runs
    misdiagnose, with `notes` on each."""
    rows = {name: seeds.seed_row(per_seed) for name, per_seed in results.items()}
    first = next(iter(next(iter(results.values())).values()))
    class_names, patients = first["class_names"], len(seeds.truth_of(first))
    cohorts = list(EXTERNAL_COHORTS) if "external" in first else []
    lines = [
        "# Model comparison over training seeds",
        "",
        f"Command: `{command}`",
        "",
        "Each model's patient-grouped CV is run once per training seed (initial weights, dropout, batches and "
        "augmentation redrawn; same folds). Cells: mean ± std over the seeds of each CV's mean over its test folds "
        "[lowest, highest seed]. Every fold's checkpoint was chosen on its validation patients; every test fold was "
        "evaluated once per seed."
        + (" The shifted cohorts' columns: patient macro-F1 of each seed's fold-0 model, mean over the seeds." if cohorts else ""),
        "",
    ]
    if figure:
        lines += [f"![patient-level macro-F1 per model, one dot per seed]({figure})", ""]
    header = ["Model", "seeds", "patient macro-F1", "per seed", "clip macro-F1", "patient AUC", f"misdiagnosed of {patients}"]
    lines += ["| " + " | ".join(header + cohorts) + " |", "|" + " --- |" * (len(header) + len(cohorts))]
    for name, row in rows.items():
        external = [np.mean([levels["external"][c] for levels in results[name].values()]) for c in cohorts]
        cells = [
            name,
            ", ".join(map(str, row["seeds"])),
            _spread(row["patient_macro_f1"]),
            ", ".join(f"{v:.3f}" for v in row["patient_macro_f1"]["per_seed"]),
            _spread(row["clip_macro_f1"]),
            _spread(row["patient_auc"]),
            ", ".join(map(str, row["misdiagnosed"])),
        ] + [f"{v:.3f}" for v in external]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *often_missed_table(results, class_names, notes)]
    return "\n".join(lines) + (f"\n{reading}" if reading else "")


def often_missed_table(results: dict[str, dict[int, dict]], class_names: list[str], notes: dict[str, str]) -> list[str]:
    missed = seeds.often_missed(results)
    if not missed:
        return []
    truth: dict[str, int] = {}
    for per_seed in results.values():
        for levels in per_seed.values():
            truth |= seeds.truth_of(levels)
    lines = [
        "## Patients most runs misdiagnose",
        "",
        "Patients misdiagnosed by at least half of all the runs above; per model, by how many of its seeds."
        + (" *Walk*: the synthetic cohort's signature and severity for the patient (0 is a normal walk)." if notes else ""),
        "",
        "| Patient | diagnosis |" + (" walk |" if notes else "") + " " + " | ".join(results) + " |",
        "| --- | --- |" + (" --- |" if notes else "") + " --- |" * len(results),
    ]
    for patient, counts in missed:
        walk = [notes.get(patient, "")] if notes else []
        cells = [patient, class_names[truth[patient]], *walk] + [f"{counts[n]}/{len(results[n])}" for n in results]
        lines.append("| " + " | ".join(cells) + " |")
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
    parser.add_argument("--seeds", default="", help="comma-separated training seeds: each config's CV once per seed")
    args = parser.parse_args()
    try:
        training_seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        exit_with_error(f"--seeds={args.seeds!r}: expected comma-separated integers, e.g. 0,1,2")
    if training_seeds is not None and len(set(training_seeds)) != len(training_seeds):
        exit_with_error(f"--seeds={args.seeds!r} names a seed twice")
    for name in args.configs:  # a misspelt name or a bad data setting stops the comparison before hours of training
        try:
            dataset.builder_config(load_config(name, args.override, args.variant).data)
        except (UserError, ValueError) as error:
            exit_with_error(str(error))
    command = "python -m asd_jax.modes.compare " + " ".join(
        [f"--override {o}" for o in args.override]
        + ([f"--variant {args.variant}"] if args.variant else [])
        + ([f"--seeds {args.seeds}"] if args.seeds else [])
        + [f"--out {args.out}", f"--workdir {args.workdir}"]
        + args.configs
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)

    reading = existing_reading(args.out)
    figure = args.out.parent / "figures" / f"{args.out.stem}_patient.png"

    relative_figure = figure.relative_to(args.out.parent).as_posix()

    def write(results: dict[str, dict]) -> None:
        if training_seeds is None:
            plots.model_comparison(level_rows(results, "patient"), figure, "patient level")
            write_atomically(args.out, results_markdown(results, command, reading, relative_figure))
            return
        per_seed = [(n, [lv["patient"]["metrics"]["macro_f1"] for lv in r.values()]) for n, r in results.items()]
        plots.seed_spread(per_seed, figure, "patient macro-F1")
        notes = patient_notes(load_config(args.configs[0], args.override, args.variant))
        write_atomically(args.out, seeds_markdown(results, command, notes, reading, relative_figure))

    try:
        compare(args.configs, args.workdir, args.override, args.variant, on_model_done=write, training_seeds=training_seeds)
    except UserError as error:  # found once a model's data or run is read (a bad data.source, a workdir's old run)
        exit_with_error(str(error))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
