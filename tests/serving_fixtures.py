"""What the serving tests share: real bank models (trained on a slice of the real CSV) in a
store, and ways to send them requests."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd

from backends.local import LocalBackend
from core.records.jobs import JobStore, TrainingJob
from core.records.registry import ModelVersion
from core.store import Store
from flows.bank import CleanOptions, clean
from flows.registration import register
from tests.helpers import wait_for


def bank_channels(
    store: Store, csv: bytes, rows: int = 3000
) -> tuple[dict[str, str], dict, list[str]]:
    """Train/validation Parquet from the first ``rows`` records; returns URLs, schema, features."""
    head = b"\n".join(csv.split(b"\n")[: rows + 1])
    table, schema = clean(head, CleanOptions())
    cut = int(0.8 * len(table))
    urls = {}
    for name, part in {"train": table[:cut], "validation": table[cut:]}.items():
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        urls[name] = store.write_bytes(f"datasets/slice/{name}.parquet", buffer.getvalue())
    return urls, schema.model_dump(), schema.features


def train_and_register(
    store: Store,
    channels,
    schema,
    features,
    name: str,
    threshold=0.0,
    algorithm="xgboost",
    **hyperparameters,
) -> ModelVersion:
    job = TrainingJob(
        name=name,
        channels=channels,
        label="y",
        features=features,
        algorithm=algorithm,
        output_url=store.url(JobStore.output_key(name)),
        feature_schema=schema,
        hyperparameters={"num_round": 20, **hyperparameters},
    )
    LocalBackend().run(job, store)
    return register(store, "bank-marketing", name, threshold)


def raw_records(csv: bytes, rows: int = 5) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(csv), sep=";", nrows=rows)


def path_of(url: str) -> Path:
    return Path(url)


def bank_store(
    folder: Path, csv: bytes, models: dict[str, dict]
) -> tuple[Store, list[str], pd.DataFrame]:
    """A store with one registered version per entry of ``models`` (job name → keyword
    arguments of :func:`train_and_register`), in order; returns it, the features and the
    validation rows."""
    store = Store(str(folder / "store"))
    store.ensure_layout()
    channels, schema, features = bank_channels(store, csv)
    for name, options in models.items():
        train_and_register(store, channels, schema, features, name, **options)
    return store, features, pd.read_parquet(channels["validation"])


# The serving tests' models, trained once for all of them (tests/serving/conftest.py), and
# registered in this order: job name → options of train_and_register.
SERVED_MODELS = {
    "good1": {"max_depth": 3},
    "good2": {"eta": 0.5, "gamma": 0},
    "pending": {"threshold": 1.0, "eta": 0.1},  # never approved
    "erratic": {"algorithm": "tests.byo_algorithms:Erratic"},  # loads, then fails on real rows
    # A second per batch; other weights than erratic's (the same file would be its version).
    "sleepy": {"algorithm": "tests.byo_algorithms:Sleepy", "steps": 150},
}
GOOD1, GOOD2, PENDING, ERRATIC, SLEEPY = range(1, len(SERVED_MODELS) + 1)


def post(url: str, body: bytes | str, content_type: str = "text/csv", **headers) -> httpx.Response:
    return httpx.post(
        f"{url}/invocations",
        content=body,
        headers={"Content-Type": content_type, **headers},
        timeout=30,
    )


def csv_rows(frame: pd.DataFrame, features: list[str]) -> str:
    return frame[features].to_csv(header=False, index=False)


class Load:
    """Requests in a loop from several threads, counting answers by status and variant; on
    kept-alive connections, or each on a ``fresh`` one (so that every worker process of a
    server gets its share, a new one included)."""

    def __init__(self, url: str, body: str, threads: int = 4, fresh: bool = False):
        self.url, self.body, self.stop = url, body, threading.Event()
        self.fresh = fresh
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0) if self.fresh else httpx.Limits()
        with httpx.Client(base_url=self.url, timeout=30, limits=limits) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(
                        "/invocations", content=self.body, headers={"Content-Type": "text/csv"}
                    )
                    key = (r.status_code, r.headers.get("x-amzn-invoked-production-variant"))
                except httpx.HTTPError as exc:
                    key = (type(exc).__name__, None)
                with self.lock:
                    self.counts[key] += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def answered(self, more: int, what: str) -> None:
        """Wait until ``more`` requests beyond those answered so far are answered too."""
        seen = self.total()
        wait_for(lambda: self.total() > seen + more, 30, what)
