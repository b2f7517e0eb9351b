"""A tuning job's strategy as an Optuna study: the sampler that proposes each trial's
hyperparameters and the pruner that stops a trial early. Optuna does the optimising; the
tuner (``flows.tuning.tuner``) drives it by ask and tell from the trials' job records.

- Bayesian: TPE (multivariate: it models how the hyperparameters act together), its first
  trials random (a quarter of them, 3 to 10) to give it something to model.
- Random: uniform over each range (on its scale).
- Hyperband: TPE proposing, Optuna's HyperbandPruner ending the trials of each bracket that
  are behind at its rungs (round 1, 3, 9, ... up to ``num_round``).
- Early stopping ``Auto`` (Bayesian or Random): Optuna's MedianPruner, which stops a trial
  whose objective at a round is worse than the median of earlier trials' at that round.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

from core.errors import TuningError
from core.records.tuning import TuningSpec

DEFAULT_ROUNDS = 100  # XGBoost's num_round when a definition gives none


def rounds(spec: TuningSpec) -> int:
    """The most rounds a trial trains: its static ``num_round``, or the top of its range."""
    static = spec.definition.hyperparameters.get("num_round")
    tuned = next((r.high for r in spec.ranges if r.name == "num_round" and r.high), None)
    return int(float(static or tuned or DEFAULT_ROUNDS))


def sampler(spec: TuningSpec) -> BaseSampler:
    if spec.strategy == "Random":
        return RandomSampler(seed=spec.seed)
    startup = min(10, max(3, spec.max_trials // 4))
    with warnings.catch_warnings():  # multivariate is "experimental" since Optuna 2.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(seed=spec.seed, n_startup_trials=startup, multivariate=True)


def pruner(spec: TuningSpec) -> BasePruner:
    most = rounds(spec)
    if spec.strategy == "Hyperband":
        if spec.early_stopping == "Auto":
            raise TuningError(
                "the Hyperband strategy stops trials early itself: "
                "TrainingJobEarlyStoppingType must be Off with it"
            )
        return HyperbandPruner(min_resource=1, max_resource=most, reduction_factor=3)
    if spec.early_stopping == "Auto":
        return MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, most // 10))
    return NopPruner()


def make_study(spec: TuningSpec) -> optuna.Study:
    """A new in-memory study for ``spec`` (the tuning job's own record is what is kept)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=spec.name,
        direction="maximize" if spec.objective.maximize else "minimize",
        sampler=sampler(spec),
        pruner=pruner(spec),
    )
