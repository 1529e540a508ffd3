"""What runs, and the command that runs it: every notebook headless with papermill
(:mod:`helpers.runner`), each exported to PDF and HTML (:mod:`helpers.exports`).

The seed, replication and ablation runs are committed in ``benchmarks/results/``:
the main run restores them, only their own group retrains them."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import artifacts, data, exports, parameters, runner

ABLATION_FILE = artifacts.PROJECT_ROOT / "benchmarks" / "ablation.json"  # the rows
VERDICTS = ("tables/replication_verdicts.md",)  # 07 writes them, the report quotes them
DEPLOYED = tuple(  # the models 08 exports, and the metrics it checks them against
    f"{folder}/{run}.{suffix}"
    for run in ("cnn-baseline", "cnn-plus")
    for folder, suffix in (("models", "keras"), ("metrics", "json"))
)


@dataclass(frozen=True)
class Run:
    """One execution of a notebook: its name names every file it writes."""

    name: str
    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    summary: bool = False  # reads the other runs' metrics: runs after them
    reads: tuple[str, ...] = ()  # other runs' files it reads (beyond a summary's
    # metrics; paths in the output folder): runs after them, reruns when one changes
    hide_input: bool = False  # PDF without code (the report)
    kept: str = ""  # its group, committed in KEPT_ROOT / kept; else exported to PDF
    seeds: range = range(0)  # the seeds `make seeds` trains a model run at


RUNS = (
    Run("01_eda", "01_eda.ipynb"),
    Run("ann-baseline", "02_ann.ipynb", {"variant": "baseline"}, seeds=range(42, 47)),
    Run("ann-dropout", "02_ann.ipynb", {"variant": "dropout"}, seeds=range(42, 47)),
    Run("cnn-baseline", "03_cnn.ipynb", {"variant": "baseline"}, seeds=range(42, 47)),
    Run("cnn-dropout", "03_cnn.ipynb", {"variant": "dropout"}, seeds=range(42, 47)),
    Run("cnn-plus", "04_cnn_plus.ipynb", seeds=range(42, 45)),  # 10 min a seed
    Run("08_deployment", "08_deployment.ipynb", reads=DEPLOYED),
    Run("05_comparison", "05_comparison.ipynb", summary=True),
    Run("07_replication", "07_replication.ipynb", summary=True),
    Run("report", "report.ipynb", summary=True, reads=VERDICTS, hide_input=True),
)


def seed_runs(fast: bool = False) -> tuple[Run, ...]:
    """``make seeds``: each main model run at its seeds, ``<run>-s<seed>``; fast mode
    (CI): ann-baseline at two."""
    plan = [(RUNS[1], 42), (RUNS[1], 43)] if fast else []
    plan += [(run, seed) for run in RUNS for seed in run.seeds if not fast]
    runs = []
    for run, seed in plan:
        name = f"{run.name}-s{seed}"
        given = {**run.parameters, "seed": seed, "name": name}
        runs.append(Run(name, run.notebook, given, kept="seeds"))
    return tuple(runs)


def replication_runs(fast: bool = False) -> tuple[Run, ...]:
    """``make replicate``: each published recipe on its own split at 5 seeds (the
    Enhanced paper's, the longest, last and at 3), the Keras study's also on ours;
    then 07. Fast mode: one seed each, and the Keras ANN at two and on ours."""
    own = data.published()["own_split"]
    plan = [(r, s) for r in ("keras-ann", "keras-cnn") for s in ("tail", "ours")]
    others = [r for r in own.index if r not in ("keras-ann", "keras-cnn")]
    plan += [(r, own[r]) for r in sorted(others, key=lambda r: r[:8] == "enhanced")]
    runs = []
    for recipe, split in plan:
        seeds = range(42, 45 if recipe.startswith("enhanced") else 47)
        if fast:
            seeds = {"tail": [42, 43], "ours": [42]} if recipe == "keras-ann" else {}
            seeds = seeds.get(split, [42] if split == own[recipe] else [])
        given = {"recipe": recipe, "split": split}
        notebook = "06_published_recipes.ipynb"
        runs += [
            Run(
                f"{recipe}-{split}-s{seed}",
                notebook,
                {**given, "seed": seed},
                kept="replication",
            )
            for seed in seeds
        ]
    return (*runs, Run("07_replication", "07_replication.ipynb", summary=True))


def ablation_runs() -> tuple[Run, ...]:
    """``make ablation``: 04 once per row of ``benchmarks/ablation.json`` (a change:
    the parameters it sets, its epochs among them)."""
    runs = []
    for change, changed in json.loads(ABLATION_FILE.read_text()).items():
        given = {**changed, "ablation_row": change}
        slug = re.sub(r"[^a-z0-9]+", "-", change.lower()).strip("-")
        name = f"ablation-{slug}-e{given['epochs']}"
        runs.append(
            Run(name, "04_cnn_plus.ipynb", {**given, "name": name}, kept="ablation")
        )
    return tuple(runs)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--fast", action="store_true", help="CI mode: tiny data, artifacts-fast/")
    add("--force", action="store_true", help="rerun finished runs")
    add("--only", nargs="+", metavar="RUN", help="these runs only (see --list)")
    add("--list", action="store_true", help="list the runs and exit")
    add("--seeds", action="store_true", help="the main model runs at several seeds")
    add("--replicate", action="store_true", help="the published recipes")
    add("--ablation", action="store_true", help="04 with one change (validation)")
    add("--update-readme", action="store_true", help="the README tables, from runs")
    add("--output-dir", type=Path, help="default: artifacts/")
    add("--reports-dir", type=Path, help="default: reports/")
    add("--data-dir", help="folder with the Fashion-MNIST files")
    add("--scheduler", metavar="ADDRESS", help="a Dask scheduler (README: Scaling out)")
    add("--workers", type=int, metavar="N", help="local runs at once (1; --fast: 2)")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.exit(2, f"error: --workers {args.workers}: give 1 or more\n")
    every = seed_runs(args.fast) if args.seeds else ()
    every += replication_runs(args.fast) if args.replicate else ()
    every += ablation_runs() if args.ablation else ()
    if args.list:
        print("\n".join(f"{r.name:24} notebooks/{r.notebook}" for r in every or RUNS))
        return 0
    if unknown := set(args.only or ()) - {run.name for run in every or RUNS}:
        known = ", ".join(run.name for run in every or RUNS)
        unknown = ", ".join(sorted(unknown))
        parser.exit(2, f"error: unknown run(s) {unknown}; known: {known}\n")
    runs = [run for run in every or RUNS if not args.only or run.name in args.only]
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m helpers.pipeline", *map(str, given)])
    with contextlib.ExitStack() as stack:
        try:  # the notebooks' own checks, before any of them starts
            parameters.check_folder("data_dir", args.data_dir)
            output_dir = parameters.check_output_dir(args.output_dir, args.fast)
            stack.enter_context(artifacts.hold_output_dir(output_dir, command))
            if args.update_readme:
                return exports.update_readme(output_dir) or 0
            committed = (*seed_runs(), *replication_runs()[:-1])  # shown by 04-07
            root = output_dir if args.fast else artifacts.PROJECT_ROOT
            reports = (args.reports_dir or root / "reports").resolve()
            data_dir = args.data_dir and str(Path(args.data_dir).resolve())
            options = dict(fast=args.fast, force=args.force, data_dir=data_dir)
            options |= dict(scheduler=args.scheduler, workers=args.workers)
            options |= dict(committed=() if every else committed)
            runner.run_all(runs, output_dir, reports, **options)
        except (parameters.ParameterError, artifacts.OutputFolderError) as err:
            parser.exit(2, f"error: {err}\n")  # an unreachable scheduler, too
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # the console's lines in order
    sys.exit(main())
