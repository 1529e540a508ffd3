"""The replication of the published recipes: the plan, the runs, the table."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import ABLATION_ROW, needs_real_data, run_python

from helpers import artifacts, data, exports, pipeline, runner, stats


def test_published_table_is_one_cited_table_with_a_split_of_each_recipe():
    published = data.published()
    assert published.index.is_unique
    assert published["published_accuracy"].between(0.8, 1).all()
    assert (published["source"].str.len() > 20).all()
    assert set(published["own_split"]) <= {
        "ours",
        "tail",
        "stratified-90-10",
        "random-80-20",
        "tail-80-20",
    }
    assert published.loc["keras-ann", "our_run"] == "ann-baseline"
    notebook = (runner.NOTEBOOK_DIR / "06_published_recipes.ipynb").read_text()
    for recipe, row in published.iterrows():  # one visible branch builds each
        base = recipe.removesuffix("-pytorch-defaults").removesuffix("-valid")
        base = base.removesuffix("-plain")
        assert notebook.count(f'base == \\"{base}\\"') == 1, recipe
        assert published.loc[row["reading_of"], "reading_of"] == row["reading_of"]
        if base != recipe:  # a PyTorch study's reading: its recipe and the change
            assert base == row["reading_of"], recipe
            assert base.startswith("torch-"), recipe
            assert "-plain" not in recipe or base.startswith("torch-a-"), recipe
            assert "-valid" not in recipe or base == "torch-b-cnn", recipe  # padding
    assert notebook.count("padding=padding") == 2  # -valid reaches both convolutions
    raw = pd.read_csv(data.PUBLISHED_FILE, keep_default_na=False)
    assert (raw["published_accuracy"] != "").sum() == published["reading_of"].nunique()


def test_replication_plan_has_every_recipe_at_its_minimum_seeds():
    runs = pipeline.replication_runs()
    assert runs[-1].name == "07_replication"
    assert runs[-1].summary
    trained = runs[:-1]
    assert len({run.name for run in trained}) == len(trained)
    seeds: dict[tuple[str, str], int] = {}
    for run in trained:
        p = run.parameters
        assert run.name == f"{p['recipe']}-{p['split']}-s{p['seed']}"
        assert run.kept
        seeds[p["recipe"], p["split"]] = seeds.get((p["recipe"], p["split"]), 0) + 1
    for recipe in ("keras-ann", "keras-cnn"):
        assert seeds[recipe, "ours"] >= 5
        assert seeds[recipe, "tail"] >= 5
    published = data.published()
    for recipe in published.index:  # 5 seeds; the Enhanced paper's (longest): 3
        least = 3 if recipe.startswith("enhanced") else 5
        assert seeds[recipe, published.loc[recipe, "own_split"]] >= least, recipe


def test_replication_table_gives_mean_spread_and_the_verdict_of_the_interval():
    runs = pd.DataFrame(
        {
            "recipe": ["b", "a", "a", "a"],
            "split": ["tail", "ours", "ours", "ours"],
            "test_accuracy": [0.91, 0.88, 0.89, 0.90],
        }
    )
    published = pd.DataFrame(
        {"published_accuracy": [0.895, 0.92], "reading_of": ["a", "b"]}, ["a", "b"]
    )
    table = stats.replication_table(runs, published)
    assert list(table["recipe"]) == ["a", "b"]  # in the published table's order
    a, b = table.iloc[0], table.iloc[1]
    assert a["mean"] == pytest.approx(0.89)
    assert a["std"] == pytest.approx(0.01)
    assert a["seeds"] == 3
    assert a["verdict"] == "consistent"
    assert a["reading_of"] == "a"
    assert b["verdict"] == "one seed"  # no interval from one seed
    assert np.isnan(b["p"])
    assert "min" not in table  # the range is no test
    assert stats.replication_table(pd.DataFrame(), published).empty


def test_update_readme_puts_the_tables_05_and_07_wrote_between_their_markers(
    tmp_path,
):
    readme = tmp_path / "README.md"
    marks = {
        n: (f"<!-- {n}:start -->", f"<!-- {n}:end -->")
        for n in ("results", "replication")
    }
    results, replication = marks["results"], marks["replication"]
    readme.write_text(
        f"intro\n{results[0]}\nold results\n{results[1]}\nmiddle\n"
        f"{replication[0]}\nold table\n{replication[1]}\nrest\n"
    )
    written = "| recipe | mean |\n|:--|--:|\n| keras-ann | 0.8850 |\n"
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "replication.md").write_text(written)
    exports.update_readme(tmp_path, readme)
    text = readme.read_text()
    assert "old table" not in text
    assert f"{replication[0]}\n{written}\nFrom `artifacts/metrics/*.json`" in text
    assert f"{results[0]}\nold results\n{results[1]}\nmiddle\n" in text  # none: kept
    assert text.startswith("intro\n")
    assert text.endswith(f"{replication[1]}\nrest\n")


def test_05_and_07_write_the_readme_tables_from_the_runs_they_show(fast_run):
    results = (fast_run / "tables" / "results.md").read_text()
    rows = [line.split("|")[1].strip() for line in results.splitlines()[2:]]
    models = [run.name for run in pipeline.RUNS if run.seeds]
    assert rows == models  # every main model run, one row each, in name order
    metrics = artifacts.read_json(fast_run / "metrics" / "cnn-plus.json")
    assert f"{metrics['test_accuracy']:.4f}" in results.splitlines()[-1]
    assert "its recipe over seeds" in results.splitlines()[0]
    replication = (fast_run / "tables" / "replication.md").read_text()
    header = [cell.strip() for cell in replication.splitlines()[0].split("|")[1:-1]]
    assert header[-3:] == ["95% prediction interval", "Holm p", "verdict"]
    recipes = {line.split("|")[1].strip() for line in replication.splitlines()[2:]}
    assert recipes == set(data.published().index)  # every committed recipe


@needs_real_data
def test_fast_replication_runs_every_recipe_with_recipe_and_split(fast_replication):
    published = data.published()
    for recipe in published.index:
        split = published.loc[recipe, "own_split"]
        run = f"{recipe}-{split}-s42"
        metrics = artifacts.read_json(fast_replication / "metrics" / f"{run}.json")
        assert (metrics["recipe"], metrics["split"], metrics["seed"]) == (
            recipe,
            split,
            42,
        )
        assert (
            metrics["published_accuracy"] == published.loc[recipe, "published_accuracy"]
        )
        assert metrics["fast"] is True
        assert metrics["epochs_run"] == 2
        assert 0 <= metrics["test_accuracy"] <= 1
    params = {
        recipe: artifacts.read_json(
            fast_replication
            / "metrics"
            / f"{recipe}-{published.loc[recipe, 'own_split']}-s42.json"
        )["params"]
        for recipe in published.index
    }
    assert params["keras-ann"] == params["keras-readme-ann"] == 235_146
    assert params["torch-b-ann"] == params["torch-a-ann"] == 235_146  # dropout: none
    assert params["keras-cnn"] == 225_034
    assert 1.2e6 < params["torch-a-cnn"] < 1.35e6  # dense layer on 7×7×128
    assert artifacts.load_runs(fast_replication) == {}  # not taken for 05's runs


@needs_real_data
def test_replication_notebook_shows_every_recipe_and_exports_a_pdf(fast_replication):
    pdf = fast_replication / "reports" / "07_replication.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not list((fast_replication / "reports").glob("keras-ann*.pdf"))
    nb = nbformat.read(fast_replication / "notebooks" / "07_replication.ipynb", 4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    shown = [
        o.get("text", "") + str(o.get("data", {}).get("text/markdown", ""))
        for o in outputs
    ]
    shown += [str(o.get("data", {}).get("text/plain", "")) for o in outputs]
    text = "\n".join(shown)  # the text outputs, not the figures' image data
    runs = artifacts.load_replication(fast_replication)
    table = stats.replication_table(runs, data.published())
    written = fast_replication / "tables" / "replication_verdicts.md"
    lines = written.read_text().splitlines()
    assert_one_verdict_line_per_figure_from_the_table(lines, table)
    for line in lines:
        assert line in text, line
    assert runs.groupby(["recipe", "split"]).size().max() == 2  # keras-ann / tail
    assert "not judged yet (one seed): torch-a-ann (" in text  # one seed each here
    assert "min–max" not in text  # the range is no verdict
    flops = f"{runs['train_flops'].sum():.2e} training FLOPs"
    assert f"{len(runs)} runs: {flops}," in text
    # keras-ann on ours has one seed here: no reading is compared with its recipe
    assert "No reading has two seeds or more beside its recipe's yet." in text
    assert (fast_replication / "figures" / "replication_seeds.png").is_file()
    console = (fast_replication / "console.txt").read_text()
    assert re.search(r"07_replication: done in \d+ s", console)


@needs_real_data
def test_replication_rerun_skips_every_finished_run(fast_replication):
    command = ["-m", "helpers.pipeline", "--fast", "--replicate", "--output-dir"]
    done = run_python(*command, fast_replication, cwd=fast_replication)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(pipeline.replication_runs(fast=True))
    assert all(line.endswith(": up to date, skipped") for line in lines), lines


def _kept_run(tmp_path, monkeypatch):
    """The first replication run, a folder for its outputs, and what it must match
    to be skipped, with KEPT_ROOT in ``tmp_path``."""
    monkeypatch.setattr(runner, "KEPT_ROOT", tmp_path / "kept")
    run, output_dir = pipeline.replication_runs()[0], tmp_path / "out"
    parameters = {**run.parameters, "fast": False, "output_dir": str(output_dir)}
    return run, output_dir, runner.fingerprint(run, parameters, output_dir)


def test_a_committed_replication_run_is_restored_not_retrained(tmp_path, monkeypatch):
    run, output_dir, expected = _kept_run(tmp_path, monkeypatch)
    metrics = dict(recipe="keras-ann", split="tail", seed=42, test_accuracy=0.88)
    copy = {"record": expected, "commit": "abc1234", "metrics": metrics}
    artifacts.write_json(runner.kept_path(run), copy)

    def train(*args):
        raise AssertionError("retrained a run whose committed copy matches")

    monkeypatch.setattr(runner, "execute", train)
    assert runner.is_done(run, "[1/1]", output_dir, tmp_path, False)
    assert artifacts.read_json(output_dir / "metrics" / f"{run.name}.json") == metrics
    assert artifacts.read_json(output_dir / "runs" / f"{run.name}.json") == expected
    elsewhere = tmp_path / "elsewhere"  # a fresh clone's folder: the same record
    parameters = {**run.parameters, "fast": False, "output_dir": str(elsewhere)}
    assert runner.fingerprint(run, parameters, elsewhere) == expected


def test_a_stale_committed_replication_run_is_retrained(tmp_path, monkeypatch):
    run, output_dir, expected = _kept_run(tmp_path, monkeypatch)
    stale = {**expected, "notebook": "0" * 16}  # made by an older 06 notebook
    copy = {"record": stale, "commit": "abc1234", "metrics": dict(test_accuracy=0.88)}
    artifacts.write_json(runner.kept_path(run), copy)

    def train(*args):
        raise runner.RunFailed("trained")

    monkeypatch.setattr(runner, "execute", train)
    assert not runner.is_done(run, "[1/1]", output_dir, tmp_path, False)
    with pytest.raises(runner.RunFailed, match="trained"):
        runner.run_one(run, "[1/1]", output_dir, tmp_path, False, "abc1234")
    assert not (output_dir / "metrics" / f"{run.name}.json").exists()


def test_the_main_run_restores_committed_runs_marks_stale_ones_and_trains_none(
    tmp_path, monkeypatch, capsys
):
    run, output_dir, expected = _kept_run(tmp_path, monkeypatch)
    stale_run = pipeline.replication_runs()[1]
    missing_run = pipeline.replication_runs()[2]
    metrics = dict(recipe="keras-ann", split="tail", test_accuracy=0.88, run=run.name)
    copy = {"record": expected, "commit": "abc1234", "metrics": metrics}
    artifacts.write_json(runner.kept_path(run), copy)
    old = {**expected, "notebook": "0" * 16, "parameters": stale_run.parameters}
    metrics = {**metrics, "run": stale_run.name}
    copy = {"record": old, "commit": "def5678", "metrics": metrics}
    artifacts.write_json(runner.kept_path(stale_run), copy)
    monkeypatch.setattr(runner, "execute", None)  # calling it would fail
    runner.restore_committed([run, stale_run, missing_run], output_dir)
    restored = artifacts.load_replication(output_dir).set_index("run", drop=False)
    stale = restored["stale"].dropna().to_dict()  # None for a current run
    assert stale == {stale_run.name: "def5678"}
    assert len(restored) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "restored 2 committed runs"
    assert lines[1].endswith(f": {stale_run.name} (def5678)")  # one line names it
    assert lines[2].endswith(f": {missing_run.name}")


def _notebook_with(path: Path, edit) -> Path:
    nb = nbformat.read(runner.NOTEBOOK_DIR / "06_published_recipes.ipynb", 4)
    edit(nb)
    nbformat.write(nb, path / "06_published_recipes.ipynb")
    return path


def test_only_a_code_edit_makes_a_run_stale(tmp_path, monkeypatch):
    run = pipeline.replication_runs()[0]
    given = {**run.parameters, "fast": False, "output_dir": "anywhere"}
    before = runner.fingerprint(run, given, Path("anywhere"))

    def cosmetic(nb):  # reworded prose, a new tag, outputs and metadata
        nb.cells[0].source += "\n\nReworded."
        nb.cells[-1].metadata["tags"] = ["remove_input"]
        nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="old output")]
        nb.metadata["papermill"] = {"input_path": "/home/someone/x.ipynb"}

    def code_edit(nb):
        cell = next(c for c in nb.cells if c.cell_type == "code" and "fit(" in c.source)
        cell.source = cell.source.replace("verbose=2", "verbose=1")

    for edit, same in ((cosmetic, True), (code_edit, False)):
        folder = tmp_path / edit.__name__
        folder.mkdir()
        monkeypatch.setattr(runner, "NOTEBOOK_DIR", _notebook_with(folder, edit))
        assert (runner.fingerprint(run, given, Path("anywhere")) == before) is same


@pytest.mark.parametrize("group", ["replication", "seeds"])
def test_committed_runs_are_full_runs_of_the_plan_with_their_commit(group):
    plan = (
        pipeline.replication_runs() if group == "replication" else pipeline.seed_runs()
    )
    planned = {run.name: run for run in plan}
    for path in sorted((runner.KEPT_ROOT / group).glob("*.json")):
        copy = artifacts.read_json(path)
        run = planned[path.stem]  # a KeyError names a run the plan dropped
        assert copy["metrics"]["fast"] is False, path.name
        assert copy["metrics"]["run"] == run.name
        assert copy["metrics"]["seed"] == run.parameters["seed"]
        assert re.fullmatch(r"[0-9a-f]{7,40}", copy["commit"]), path.name
        assert {"test_accuracy", "val_accuracy", "train_flops"} <= set(copy["metrics"])
        expected = kept_record(run)
        assert copy["record"]["parameters"] == expected["parameters"], path.name
        # made with the notebook's code as committed, or stale: shown as such (below)
        assert copy["record"]["inputs"] == expected["inputs"], path.name


def kept_record(run) -> dict:
    """The record a kept (full) run made with the committed notebook code carries."""
    given = {**run.parameters, "fast": False, "output_dir": "anywhere"}
    return runner.fingerprint(run, given, Path("x"))


def stale_replication_runs() -> list[str]:
    """The committed replication runs made with older code of 06."""
    planned = {run.name: run for run in pipeline.replication_runs()}
    return [
        path.stem
        for path in sorted((runner.KEPT_ROOT / "replication").glob("*.json"))
        if artifacts.read_json(path)["record"] != kept_record(planned[path.stem])
    ]


@needs_real_data
def test_07_and_the_report_name_the_stale_committed_replication_runs(fast_run):
    nb = nbformat.read(fast_run / "notebooks" / "07_replication.ipynb", 4)
    text = "\n".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    stale = stale_replication_runs()  # none once `make replicate` has run
    said = f"{len(stale)} of them were made with older code of `06`"
    assert (said in text) is bool(stale)
    assert ("older code" in text) is bool(stale)
    nb = nbformat.read(fast_run / "notebooks" / "report.ipynb", 4)
    report = "\n".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert (f"{len(stale)} of the " in report) is bool(stale)
    assert ("made with older code of `06`" in report) is bool(stale)


@needs_real_data
def test_report_and_07_judge_the_committed_replication_runs_by_their_interval(fast_run):
    # the main run (fast mode too) restores the committed runs: no retraining
    table = stats.replication_table(
        artifacts.load_replication(fast_run), data.published()
    )
    committed = list((runner.KEPT_ROOT / "replication").glob("*.json"))
    assert table["seeds"].sum() == len(committed)
    nb = nbformat.read(fast_run / "notebooks" / "report.ipynb", 4)
    text = "\n".join(
        str(o.get("data", {}).get("text/markdown", ""))
        for c in nb.cells
        for o in c.get("outputs", [])
    )
    assert "No replication runs yet" not in text
    figures = table["reading_of"].nunique()
    assert f"{figures} published figures, {len(table)} readings" in text
    lines = (fast_run / "tables" / "replication_verdicts.md").read_text().splitlines()
    assert_one_verdict_line_per_figure_from_the_table(lines, table)
    assert any("**consistent** with" in line for line in lines)  # committed runs
    for line in lines:  # as 07 rendered them
        assert line in text, line
    assert (fast_run / "reports" / "07_replication.pdf").is_file()


def test_seed_plan_trains_every_main_model_run_at_five_seeds_cnn_plus_at_three():
    runs = pipeline.seed_runs()
    seeds: dict[str, list[int]] = {}
    for run in runs:
        of, seed = run.name.rsplit("-s", 1)
        seeds.setdefault(of, []).append(int(seed))
        assert run.parameters["name"] == run.name  # the files it writes
        assert run.parameters["seed"] == int(seed)
        assert run.kept == "seeds"
        assert run.kept
    models = [r.name for r in pipeline.RUNS if r.seeds]
    assert list(seeds) == models
    assert models == [
        "ann-baseline",
        "ann-dropout",
        "cnn-baseline",
        "cnn-dropout",
        "cnn-plus",
    ]
    assert seeds["cnn-baseline"] == [42, 43, 44, 45, 46]
    assert seeds["cnn-plus"] == [42, 43, 44]


def test_the_main_command_restores_before_running_and_hands_no_kept_run_to_train(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(runner, "KEPT_ROOT", tmp_path / "kept")
    seed_run = pipeline.seed_runs()[0]
    full = {**seed_run.parameters, "fast": False, "output_dir": "anywhere"}
    record = runner.fingerprint(seed_run, full, tmp_path)
    metrics = dict(run=seed_run.name, seed=42, fast=False, test_accuracy=0.88)
    artifacts.write_json(
        runner.kept_path(seed_run),
        {"record": record, "commit": "abc1234", "metrics": metrics},
    )
    handed = []
    out = tmp_path / "out"

    def is_done(run, *rest):  # what the command would run, or skip
        handed.append(run.name)
        assert (out / "metrics" / f"{seed_run.name}.json").is_file()  # restored first
        return True

    class Client:  # no cluster: every run counts as done
        def subscribe_topic(self, *args):
            pass

    monkeypatch.setattr(runner, "is_done", is_done)
    monkeypatch.setattr(
        runner, "dask_client", lambda *a: contextlib.nullcontext(Client())
    )
    assert pipeline.main(["--output-dir", str(out)]) == 0
    assert handed == [run.name for run in pipeline.RUNS]  # no seed or replication run
    assert artifacts.load_seed_runs(out)["run"].tolist() == [seed_run.name]


def test_the_ablation_plan_names_each_row_by_its_change_and_epochs():
    runs = pipeline.ablation_runs()
    rows = json.loads(pipeline.ABLATION_FILE.read_text())
    assert len({run.name for run in runs}) == len(rows) == len(runs)
    assert runs[1].name == "ablation-no-augmentation-e4"
    assert runs[1].parameters == {
        "network": "residual",
        "whiten": False,
        "epochs": 4,
        "stem": "strided",
        "augment": False,
        "ablation_row": "no augmentation",
        "name": "ablation-no-augmentation-e4",
    }
    assert runs[5].name == "ablation-12-epochs-e12"
    assert all(run.kept == "ablation" for run in runs)


def test_an_ablation_run_stops_before_the_test_split_and_a_fast_one_is_not_kept(
    fast_runs,
):
    run = next(r for r in pipeline.ablation_runs() if r.name == ABLATION_ROW)
    output = fast_runs["ablation"]
    metrics = artifacts.read_json(output / "metrics" / f"{run.name}.json")
    assert metrics["change"] == "no label smoothing"
    assert metrics["label_smoothing"] == 0.0  # the row records its parameters
    assert 0 <= metrics["val_accuracy"] <= 1
    assert metrics["train_flops"] > 0
    assert "test_accuracy" not in metrics  # the test split stayed untouched
    executed = nbformat.read(output / "notebooks" / f"{run.name}.ipynb", 4)
    assert not any("test-split" in c.metadata.get("tags", []) for c in executed.cells)
    after = {p: p.read_bytes() for p in (runner.KEPT_ROOT / "ablation").glob("*")}
    assert after == fast_runs["kept_ablation"]  # a fast row is a check, not a result


def assert_one_verdict_line_per_figure_from_the_table(lines, table):
    """07's lines: one per published figure, each reading's numbers and verdict."""
    groups = list(table.groupby("reading_of", sort=False))
    assert len(lines) == len(groups) == table["reading_of"].nunique()
    for line, (figure, rows) in zip(lines, groups, strict=True):
        assert line.startswith(
            f"- **{figure}**, published {rows['published'].iloc[0]:.2%}"
        )
        for row in rows.itertuples():
            assert f"{row.recipe}" in line
            assert f"({row.mean:.2%} over {row.seeds} seed" in line, row.recipe
            if row.verdict in ("above", "below"):
                assert f"the figure lies {row.verdict} it: p = {row.p:.2g}" in line
                chance = "beyond" if row.p_holm < 0.05 else "within"
                assert f"Holm p = {row.p_holm:.2g}, {chance} chance" in line
            elif row.verdict == "consistent":
                assert "**consistent** with" in line, row.recipe
            else:
                assert "not judged yet (one seed): " in line, row.recipe
