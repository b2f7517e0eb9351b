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
