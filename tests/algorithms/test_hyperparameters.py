import pytest

from algorithms.xgboost import XGBoostAlgorithm
from core.errors import HyperparameterError


def validate(**values):
    return XGBoostAlgorithm().validate_hyperparameters(values)


def test_defaults_are_the_demos():
    hp = validate()
    assert {
        k: hp[k]
        for k in (
            "max_depth",
            "eta",
            "gamma",
            "min_child_weight",
            "subsample",
            "objective",
            "num_round",
        )
    } == {
        "max_depth": 5,
        "eta": 0.2,
        "gamma": 4.0,
        "min_child_weight": 6.0,
        "subsample": 0.8,
        "objective": "binary:logistic",
        "num_round": 100,
    }


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        HyperparameterError,
        match=r"unknown hyperparameter\(s\) 'max_dept'; valid names: .*max_depth",
    ):
        validate(max_dept=3)


def test_out_of_range_names_parameter_and_range():
    with pytest.raises(
        HyperparameterError, match=r"'max_depth' = 100 is invalid: must be an integer in \[1, 30\]"
    ):
        validate(max_depth=100)
    with pytest.raises(
        HyperparameterError, match=r"'eta' = 0 is invalid: must be a number in \(0, 1\]"
    ):
        validate(eta=0)


def test_wrong_type_is_named():
    with pytest.raises(
        HyperparameterError, match=r"'subsample' = 'lots' is invalid: must be a number"
    ):
        validate(subsample="lots")


def test_alias_and_strings_from_the_command_line():
    hp = validate(**{"lambda": "2.5", "max_depth": "3"})
    assert hp["lambda"] == 2.5 and hp["max_depth"] == 3


def test_objective_is_a_closed_choice():
    with pytest.raises(
        HyperparameterError,
        match=r"'objective' = 'reg:linear' is invalid: must be one of 'binary:logistic'",
    ):
        validate(objective="reg:linear")
