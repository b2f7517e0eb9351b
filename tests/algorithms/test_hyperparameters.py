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
        HyperparameterError, match=r"'max_depth' = 100 is invalid: must be an integer in \[0, 30\]"
    ):
        validate(max_depth=100)
    with pytest.raises(
        HyperparameterError, match=r"'eta' = -0.1 is invalid: must be a number in \[0, 1\]"
    ):
        validate(eta=-0.1)
    assert validate(eta=0)["eta"] == 0  # XGBoost's range is [0, 1]: tuning ranges start there


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
        match=r"'objective' = 'reg:cubic' is invalid: must be one of 'binary:logistic'",
    ):
        validate(objective="reg:cubic")


def test_sagemakers_names_as_strings():
    """What SageMaker code sends: every value a string, deprecated names among them."""
    hp = validate(
        num_round="50", objective="multi:softprob", num_class="3", eval_metric="mlogloss,merror",
        rate_drop="0.1", silent="0", nthread="4", tree_method="auto", max_depth="0",
    )  # fmt: skip
    assert hp["num_round"] == 50 and hp["num_class"] == 3 and hp["max_depth"] == 0
    assert hp["eval_metric"] == ["mlogloss", "merror"] and hp["rate_drop"] == 0.1
    assert "silent" not in hp and "nthread" not in hp  # ignored, with a line in the log
    assert validate(objective="reg:linear")["objective"] == "reg:squarederror"  # renamed


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"objective": "multi:softmax"}, r"objective 'multi:softmax' needs num_class"),
        ({"num_class": "3"}, r"num_class is only for the multi:softmax"),
        (
            {"eval_metric": "auc,acc"},
            r"'eval_metric' = 'auc,acc' is invalid: unknown metric\(s\) acc",
        ),
        ({"rate_drop": "1.5"}, r"'rate_drop' = '1.5' is invalid: must be a number in \[0, 1\]"),
        ({"booster": "forest"}, r"'booster' = 'forest' is invalid: must be one of 'gbtree'"),
        ({"csv_weights": "1"}, r"unsupported hyperparameter\(s\): 'csv_weights'"),
    ],
)
def test_sagemakers_names_are_checked(values, match):
    with pytest.raises(HyperparameterError, match=match):
        validate(**values)


def test_device_passes_through_and_a_missing_gpu_is_said_in_the_log(tmp_path):
    from algorithms.base import TrainingContext, TrainingData
    from algorithms.xgboost import XGBoostAlgorithm
    from tests.helpers import FEATURES, synthetic_frame

    assert validate(device="cuda:1")["device"] == "cuda:1"
    with pytest.raises(
        HyperparameterError, match=r"'device' = 'tpu' is invalid: must match .*cuda"
    ):
        validate(device="tpu")
    lines: list[str] = []
    data = TrainingData(synthetic_frame(200, 1), synthetic_frame(50, 2), "y", FEATURES)
    context = TrainingContext(output_dir=tmp_path, log=lines.append, threads=1)
    trained = XGBoostAlgorithm().train(data, {"num_round": 3, "device": "cuda"}, context)
    assert trained.metrics["validation_auc"] > 0
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA") or not _gpu_visible():
        assert any("xgboost: " in line and "GPU" in line for line in lines), lines


def _gpu_visible() -> bool:
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0
