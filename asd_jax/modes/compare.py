r"""The comparison table: patient-grouped K-fold CV of several configs with the same seeds.

  python -m asd_jax.modes.compare --override train.num_steps=750 --out docs/results.md --workdir runs/compare \
    crossattn cnn vit_phasemix stgcn:compact crossattn_no_prior crossattn_self_only crossattn_no_align \
    crossattn_prior_dropout

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

from asd_jax.evaluation import plots, report
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


def compare(
    names: list[str], workdir: Path, overrides: list[str], variant: str | None = None, on_model_done=None
) -> dict[str, dict]:
    """Runs (or resumes) CV for every config; returns each one's summary levels.

    `on_model_done(results_so_far)` runs after each model, so a comparison that takes hours shows
    its table growing and an interrupted one keeps what it finished.
    """
    results = {}
    for name in names:
        run_dir = workdir / name.replace(":", "_")
        results[name] = cv.run_cv(load_config(name, overrides, variant), run_dir)["levels"]
        if on_model_done is not None:
            on_model_done(results)
    return results


READING_HEADING = "## Reading"


def level_rows(results: dict[str, dict], level: str) -> list[tuple[str, dict]]:
    return [(name, {k: v for k, v in levels[level].items() if k != "predictions"}) for name, levels in results.items()]


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
    return "\n".join(sections) + (f"\n{reading}" if reading else "")


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
        args.out.write_text(results_markdown(results, command, reading, figure.relative_to(args.out.parent).as_posix()))

    compare(args.configs, args.workdir, args.override, args.variant, on_model_done=write)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
