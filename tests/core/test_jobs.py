import pytest

from core.errors import JobError
from core.records.jobs import JobStore, Secondary, Status
from core.store import Store
from tests.helpers import make_job


def test_a_job_claimed_but_not_yet_recorded_reads_pending(store: Store):
    # ``create`` claims the name (job.json) before it writes the first status: a reader in
    # between (a test waiting on the job, ``skiff jobs list``) sees it Pending, not missing.
    jobs = JobStore(store)
    job = make_job(store, {"train": store.url("train.parquet")})
    jobs.claim(jobs.key(job.name, "job.json"), job)
    status = jobs.status(job.name)
    assert (status.status, status.secondary_status) == (Status.PENDING, Secondary.STARTING)
    with pytest.raises(JobError, match="no training job named 'nobody'"):
        jobs.status("nobody")


def test_rounds_are_logged_in_sagemakers_format_and_shown_to_people_as_rounds():
    """Issue 23, item 5: the job's log keeps SageMaker's round lines (what SageMaker code
    reads through CloudWatch Logs); Skiff's own views show them as 'round 40/100', with one
    timestamp where they are relayed into a log that stamps its own."""
    from algorithms.watch import relayed
    from core.records.channel import for_people, log_line, logged

    line = log_line(39, {"train_auc": 0.81593, "validation_auc": 0.80998})
    assert line == "[39] train-auc:0.81593 validation-auc:0.80998"
    assert for_people(line, 100) == "round 40/100: validation_auc 0.8100, train_auc 0.8159"
    stamped = f"2026-12-04T01:11:27.822+00:00 {line}"
    assert (
        for_people(stamped, 100)
        == f"{stamped[:30]}round 40/100: validation_auc 0.8100, train_auc 0.8159"
    )
    assert relayed(stamped) == "round 40: validation_auc 0.8100, train_auc 0.8159"
    assert relayed("2026-12-04T01:11:27.822+00:00 InProgress/Training: xgboost") == (
        "InProgress/Training: xgboost"
    )
    assert [r for r in range(100) if logged(r, 100)] == [0, *range(9, 100, 10)]
