"""Tuning jobs: ranges checked against the hyperparameters' bounds, reproducible seeded
trials that honour their parallelism, early stopping, a failed trial, stop, the CLI, and the
pipeline's ``--tune``. Trials are real training jobs on the local backend."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest

from core.errors import TuningError
from core.records.channel import read_rounds
from core.records.jobs import JobStore, Status
from core.records.registry import ModelRegistry
from core.records.tuning import (
    Objective,
    ParameterRange,
    TuningRecord,
    TuningSpec,
    TuningStatus,
    TuningStore,
)
from core.store import Store
from flows.cli import main as cli
from flows.tuning import jobs, report
from flows.tuning.ranges import distribution, parse_range, value
from tests.helpers import make_job, wait_for

CURVE = "tests.byo_algorithms:Curve"


def spec_of(store: Store, channels: dict[str, str], name: str, ranges, **changes) -> TuningSpec:
    hyperparameters = changes.pop("hyperparameters", {"num_round": 20})
    algorithm = changes.pop("algorithm", "xgboost")
    definition = make_job(
        store, channels, name=name, algorithm=algorithm, hyperparameters=hyperparameters
    )
    fields = {
        "name": name,
        "definition": definition,
        "ranges": ranges,
        "objective": Objective(metric="validation:auc"),
        "max_trials": 4,
        "max_parallel": 2,
    }
    return TuningSpec(**fields | changes)


def continuous(name, low, high, scaling="Auto"):
    return ParameterRange(name=name, kind="continuous", low=low, high=high, scaling=scaling)


def categorical(name, *values):
    return ParameterRange(name=name, kind="categorical", values=list(values))


# The companion notebook's ranges: eta from 0 is within XGBoost's own [0, 1].
NOTEBOOK_RANGES = [
    continuous("eta", 0, 1),
    continuous("min_child_weight", 1, 10),
    continuous("alpha", 0, 2),
    ParameterRange(name="max_depth", kind="integer", low=1, high=10),
]


@pytest.mark.parametrize(
    ("ranges", "changes", "message"),
    [
        ([continuous("eta", 0, 2)], {}, r"range eta \[0, 2\]: hyperparameter 'eta' = 2.0 .*\[0, 1\]"),
        ([continuous("etta", 0, 1)], {}, r"range etta \[0, 1\]: unknown hyperparameter\(s\) 'etta'"),
        ([continuous("max_depth", 1, 10)], {}, r"range max_depth \[1, 10\]: .*'max_depth' = 4.33.* integer"),
        ([categorical("booster", "gbtree", "forest")], {}, r"range booster \{gbtree, forest\}: .*'forest'"),
        ([continuous("eta", 0, 1)], {"hyperparameters": {"eta": 0.1}}, r"eta both static and tuned"),
        ([continuous("eta", 0, 1), continuous("eta", 0, 0.5)], {}, r"eta given more than one range"),
        (NOTEBOOK_RANGES, {"objective": Objective(metric="test:auc")}, r"never a test split"),
        (NOTEBOOK_RANGES, {"objective": Objective(metric="validation:rmse", maximize=False)},
         r"the trials report validation:auc, validation:error"),
        (NOTEBOOK_RANGES, {"strategy": "Hyperband", "early_stopping": "Auto"}, r"must be Off"),
    ],
)  # fmt: skip
def test_a_bad_range_or_objective_is_refused_naming_it(store, ranges, changes, message):
    channels = {"train": "unused", "validation": "unused"}
    spec = spec_of(store, channels, "bad", ranges, **changes)
    with pytest.raises(TuningError, match=message):
        jobs.create(store, spec)
    assert TuningStore(store).names() == []  # nothing recorded


def test_the_companion_notebooks_ranges_are_valid_and_command_line_ranges_parse(store):
    jobs.check(spec_of(store, {"train": "t", "validation": "v"}, "ok", NOTEBOOK_RANGES))
    assert parse_range("max_depth", "3:10").kind == "integer"
    assert parse_range("eta", "0:1").kind == "continuous"  # XGBoost's eta is a number
    assert parse_range("eta", "0.01:0.3:log").scaling == "Logarithmic"
    assert parse_range("booster", "gbtree,dart").values == ["gbtree", "dart"]
    for text, message in [
        ("5", "give LOW:HIGH"),
        ("1:x", "must be numbers"),
        ("0:1:cubic", "scaling 'cubic'"),
        ("0:1:log", "Logarithmic, so its low value must be above 0"),
        ("3:1", "low 3 is above high 1"),
    ]:
        with pytest.raises(TuningError, match=message):
            parse_range("gamma", text)


def test_scalings_sample_within_their_range():
    import optuna

    ranges = [
        continuous("a", 0.001, 1, "Logarithmic"),
        continuous("b", 0.9, 0.999, "ReverseLogarithmic"),
        ParameterRange(name="c", kind="integer", low=1, high=1000, scaling="Logarithmic"),
    ]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    samples = []
    for _ in range(200):
        trial = study.ask({r.name: distribution(r) for r in ranges})
        samples.append({r.name: value(r, trial.params[r.name]) for r in ranges})
        study.tell(trial, 0.0)
    for r in ranges:
        values = [s[r.name] for s in samples]
        assert r.low <= min(values) and max(values) <= r.high, r.name
    # Log scales: as many draws below the geometric middle as above it (roughly).
    assert 60 < sum(s["a"] < 0.0316 for s in samples) < 140
    assert 60 < sum(s["b"] > 0.99 for s in samples) < 140  # 1 - b in [0.001, 0.1]: dense near 1
    assert all(isinstance(s["c"], int) for s in samples)


def overlap(jobs_store: JobStore, names: list[str]) -> int:
    """The most jobs that were running at one moment, from their records' times."""
    spans = []
    for name in names:
        status = jobs_store.status(name)
        spans.append((datetime.fromisoformat(status.started_at), 1))
        spans.append((datetime.fromisoformat(status.ended_at), -1))
    most = running = 0
    for _, change in sorted(spans, key=lambda s: (s[0], s[1])):
        running += change
        most = max(most, running)
    return most


@pytest.mark.slow
def test_a_seeded_tuning_job_is_reproducible_and_honours_its_parallelism(
    store, tiny_channels, capsys
):
    ranges = [continuous("eta", 0.05, 0.5, "Logarithmic"), *NOTEBOOK_RANGES[1:]]
    records = []
    for name in ("seeded-a", "seeded-b"):
        spec = spec_of(store, tiny_channels, name, ranges, max_trials=5, max_parallel=3, seed=7)
        jobs.create(store, spec)
        records.append(jobs.run(store, name))
    first, second = records
    assert first.status == TuningStatus.COMPLETED and first.counts()["Completed"] == 5
    # Trials 1-3 are TPE's random start, 4 and 5 its model of them: the same, whatever order
    # the trials ended in.
    assert [t.hyperparameters for t in first.trials] == [t.hyperparameters for t in second.trials]
    assert [t.objective for t in first.trials] == [t.objective for t in second.trials]
    best = max(first.trials, key=lambda t: t.objective)
    assert first.best_trial == best

    job_store = JobStore(store)
    names = [t.job_name for t in first.trials]
    assert overlap(job_store, names) <= 3
    for trial in first.trials:  # every trial a recorded job, tagged, with its own values
        spec = job_store.spec(trial.job_name)
        assert spec.tuning_job == "seeded-a" and spec.hyperparameters["num_round"] == 20
        assert {k: spec.hyperparameters[k] for k in trial.hyperparameters} == trial.hyperparameters
        assert spec.resources.threads == max(1, (__import__("os").cpu_count() or 1) // 3)
        # Each round, only the objective's channel; the train split's figures once, at the end.
        assert "train_auc" not in read_rounds(job_store, trial.job_name)[-1]
        assert job_store.status(trial.job_name).metrics["train_auc"] > 0.5

    assert cli(["--store", store.root, "jobs", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{n}  " in listed or listed.rstrip().endswith(n) for n in names)
    assert listed.count("seeded-a\n") + listed.count("seeded-a ") >= 5
    assert cli(["--store", store.root, "tuning", "list"]) == 0
    listed = capsys.readouterr().out
    assert "seeded-a" in listed and "5/5" in listed and f"{best.objective:.4f}" in listed
    assert cli(["--store", store.root, "tuning", "describe", "seeded-a"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("tuning job seeded-a: Completed\n") and f"{best.job_name}: " in shown
    assert cli(["--store", store.root, "tuning", "describe", "seeded-a", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["best_training_job"]["job_name"] == best.job_name
    assert len(described["trials"]) == 5 and described["counts"]["Completed"] == 5

    spec = TuningStore(store).spec("seeded-a")
    rows = report.trial_rows(spec, first)
    assert rows[0]["trial"] == best.number and rows[0]["best"] == "★"
    assert [r["validation:auc"] for r in rows] == sorted(
        (r["validation:auc"] for r in rows), reverse=True
    )
    assert "data:image/png;base64," in report.markdown(spec, first)


@pytest.mark.slow
def test_early_stopping_stops_a_bad_trial_and_a_failed_trial_is_not_fatal(store, tiny_channels):
    # Seed 15 draws 0.9, 0.8, fail, 0.8, 0.3, 0.9: the bad 0.3 comes after three completed
    # trials (MedianPruner's start), and would take 30 s if nobody stopped it.
    spec = spec_of(
        store,
        tiny_channels,
        "early",
        [categorical("quality", "0.9", "0.8", "fail", "0.3")],
        algorithm=CURVE,
        hyperparameters={"rounds": 30, "num_round": 30, "pace": 0.01, "slow_pace": 1.0},
        strategy="Random",
        early_stopping="Auto",
        seed=15,
        max_trials=6,
        max_parallel=1,
    )
    jobs.create(store, spec)
    record = jobs.run(store, "early")
    by_quality = [(t.hyperparameters["quality"], t.status) for t in record.trials]
    assert by_quality == [
        ("0.9", Status.COMPLETED),
        ("0.8", Status.COMPLETED),
        ("fail", Status.FAILED),
        ("0.8", Status.COMPLETED),
        ("0.3", Status.STOPPED),
        ("0.9", Status.COMPLETED),
    ]
    failed, stopped = record.trials[2], record.trials[4]
    assert "a trial made to fail" in failed.failure_reason
    assert stopped.early_stopped and stopped.objective < 0.3
    assert JobStore(store).status(stopped.job_name).status == Status.STOPPED
    assert record.status == TuningStatus.COMPLETED
    assert record.counts() == {"Completed": 4, "InProgress": 0, "Failed": 1, "Stopped": 1}
    assert record.best_trial.hyperparameters["quality"] == "0.9"


@pytest.mark.slow
def test_hyperband_stops_trials_behind_at_its_rungs(store, tiny_channels):
    spec = spec_of(
        store,
        tiny_channels,
        "hyperband",
        [categorical("quality", "0.9", "0.8", "0.2")],
        algorithm=CURVE,
        hyperparameters={"rounds": 27, "num_round": 27, "pace": 0.01, "slow_pace": 0.2},
        strategy="Hyperband",
        max_trials=8,
        max_parallel=2,
        seed=3,
    )
    jobs.create(store, spec)
    record = jobs.run(store, "hyperband")
    assert record.status == TuningStatus.COMPLETED
    assert record.best_trial.hyperparameters["quality"] == "0.9"
    for trial in record.trials:  # each ended whole, or was stopped early at a rung
        assert trial.status == Status.COMPLETED or trial.early_stopped, trial


@pytest.mark.slow
def test_a_stopped_tuning_job_stops_its_running_trials_and_keeps_the_ended_ones(
    store, tiny_channels, capsys
):
    spec = spec_of(
        store,
        tiny_channels,
        "stopme",
        [categorical("rounds", "1", "600")],  # seed 0 draws 600, 1, 600, 600
        algorithm=CURVE,
        hyperparameters={"quality": 0.9, "pace": 0.5},
        strategy="Random",
        seed=0,
        max_trials=6,
        max_parallel=2,
    )
    jobs.create(store, spec)
    ended: list[TuningRecord] = []
    tuner = threading.Thread(target=lambda: ended.append(jobs.run(store, "stopme")), daemon=True)
    tuner.start()
    tunings = TuningStore(store)

    def one_ended_two_running() -> bool:
        counts = tunings.record("stopme").counts()
        return counts["Completed"] == 1 and counts["InProgress"] == 2

    wait_for(one_ended_two_running, 60, "trial 2 to complete and trials 1 and 3 to train")
    assert cli(["--store", store.root, "tuning", "stop", "stopme"]) == 0
    assert "stop requested" in capsys.readouterr().out
    tuner.join(60)
    assert ended, "the tuner did not end after the stop"
    record = ended[0]
    assert record.status == TuningStatus.STOPPED and len(record.trials) == 3  # no 4th
    assert [t.status for t in record.trials] == [Status.STOPPED, Status.COMPLETED, Status.STOPPED]
    assert record.best == 2  # the ended trial is kept, and is the best
    assert tunings.record("stopme") == record  # as stored
    assert cli(["--store", store.root, "tuning", "stop", "stopme"]) == 0
    assert "already ended Stopped" in capsys.readouterr().out


@pytest.mark.slow
def test_every_trial_failing_fails_the_tuning_job_saying_why(store, tiny_channels):
    spec = spec_of(
        store,
        tiny_channels,
        "doomed",
        [categorical("quality", "fail")],
        algorithm=CURVE,
        hyperparameters={},
        max_trials=2,
    )
    jobs.create(store, spec)
    record = jobs.run(store, "doomed")
    assert record.status == TuningStatus.FAILED
    assert "no trial completed (2 failed, 0 stopped)" in record.failure_reason
    assert "a trial made to fail" in record.failure_reason
    with pytest.raises(TuningError, match="already exists"):
        jobs.create(store, spec)


def test_the_pipeline_tunes_and_registers_the_best_trial(prefect_server, http_root, tmp_path):
    from flows.bank_marketing import main

    summary_file = tmp_path / "summary.json"
    store = Store(str(tmp_path / "store"))
    code = main(
        [
            "--source", f"{http_root[1]}/bank-additional.zip", "--store", store.root,
            "--tune", "6", "--tune-parallel", "3", "--tune-range", "max_depth=2:6",
            "--tune-range", "gamma=", "--num-round", "30", "--until", "register",
            "--summary-json", str(summary_file),
        ]
    )  # fmt: skip
    summary = json.loads(summary_file.read_text())
    assert code == 0, summary
    name = summary["tuning_job"]
    record = TuningStore(store).record(name)
    assert record.status == TuningStatus.COMPLETED and len(record.trials) == 6
    best = record.best_trial
    assert summary["job_name"] == best.job_name
    assert summary["metrics"]["validation_auc"] == pytest.approx(best.objective)
    version = ModelRegistry(store).get("bank-marketing", summary["model_version"])
    assert version.job_name == best.job_name and version.tuning_job == name  # lineage
    spec = TuningStore(store).spec(name)
    assert set(spec.definition.channels) == {"train", "validation"}  # never the test split
    assert "gamma" not in {r.name for r in spec.ranges}
    assert 2 <= best.hyperparameters["max_depth"] <= 6
    # In Prefect: each trial a task run named by its values; the table and the picture.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = report.artifact_key(name)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key, f"{key}-trials"]))
        )
        runs = client.read_task_runs()
    assert {a.key for a in found} == {key, f"{key}-trials"}
    table = next(a for a in found if a.key.endswith("-trials")).data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == 6 and rows[0]["job"] == best.job_name
    names = {r.name for r in runs if r.name.startswith("trial ")}
    assert sum(f"max_depth={best.hyperparameters['max_depth']}" in n for n in names) >= 1
    assert len([n for n in names if n.startswith(f"trial {best.number}: ")]) >= 1


def test_the_pipeline_refuses_a_bad_range_before_it_downloads(tmp_path, capsys):
    from flows.bank_marketing import main

    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path), "--tune", "3", "--tune-range", "eta=0:2"])
    assert "range eta [0, 2]" in capsys.readouterr().err


def test_a_tuning_job_whose_tuner_went_silent_reads_as_lost(store, capsys):
    spec = spec_of(store, {"train": "t", "validation": "v"}, "silent", NOTEBOOK_RANGES)
    jobs.create(store, spec)
    tunings = TuningStore(store)
    record = tunings.record("silent")
    assert tunings.lost(record) is None  # just recorded: its tuner is starting
    # As its tuner left it a minute ago (killed; a tuner saves its record every 5 s).
    record.modified_at = "2026-01-01T00:00:00.000+00:00"
    tunings.publish(tunings.key("silent", "status.json"), record)
    assert "has not said a word for" in tunings.lost(tunings.record("silent"))
    assert cli(["--store", store.root, "tuning", "list"]) == 0
    assert "Lost" in capsys.readouterr().out
    assert cli(["--store", store.root, "tuning", "describe", "silent", "--json"]) == 0
    assert "has not said a word" in json.loads(capsys.readouterr().out)["lost"]
