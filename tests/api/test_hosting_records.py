"""Models and endpoint configs through boto3's client (no endpoint runs here), and a hosted
model as an endpoint loads it: its checksum checked, the legacy format refused."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError

from algorithms.archive import archive_bytes
from core.errors import ModelLoadError
from serving.dataplane.loading import load_hosted
from tests.api.conftest import sagemaker
from tests.api.test_records import shaped

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ARN = "arn:aws:sagemaker:us-east-1:000000000000"


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=x[:, 0] > 0), 5)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, booster) -> str:
    path = tmp_path_factory.mktemp("artifact") / "model.tar.gz"
    path.write_bytes(archive_bytes(bytes(booster.save_raw("ubj"))))
    return f"file://{path}"


def model_request(name: str, url: str, **changes):
    container = {"Image": IMAGE, "ModelDataUrl": url, "Environment": {}}
    return {
        "ModelName": name,
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
        "PrimaryContainer": container,
    } | changes


def refused(call, **request):
    with pytest.raises(ClientError) as caught:
        call(**request)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_models_are_created_described_listed_and_deleted(quiet_api, artifact):
    client = sagemaker(quiet_api)
    assert (
        client.create_model(**model_request("xgb-a", artifact))["ModelArn"] == f"{ARN}:model/xgb-a"
    )
    described = shaped("DescribeModel", client.describe_model(ModelName="xgb-a"))
    assert described["PrimaryContainer"]["ModelDataUrl"] == artifact
    assert refused(client.create_model, **model_request("xgb-a", artifact)) == (
        "ValidationException",
        f'Cannot create already existing model "{ARN}:model/xgb-a".',
    )
    client.create_model(**model_request("xgb-b", artifact))
    pages = client.get_paginator("list_models").paginate(
        SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 1}
    )
    names = [m["ModelName"] for page in pages for m in page["Models"]]
    assert names[:2] == ["xgb-a", "xgb-b"]
    client.delete_model(ModelName="xgb-b")
    assert refused(client.describe_model, ModelName="xgb-b") == (
        "ValidationException",
        f'Could not find model "{ARN}:model/xgb-b".',
    )
    _, message = refused(
        client.create_model, **model_request("xgb-c", "file:///nowhere/model.tar.gz")
    )
    assert message.startswith("Could not find model data at file:///nowhere/model.tar.gz")
    _, message = refused(
        client.create_model,
        **model_request(
            "xgb-c", artifact, PrimaryContainer={"Image": "me/mine:1", "ModelDataUrl": artifact}
        ),
    )
    assert "is not one of SageMaker's XGBoost images" in message


def test_endpoint_configs_name_models_that_exist(quiet_api, artifact):
    client = sagemaker(quiet_api)
    client.create_model(**model_request("xgb-config", artifact))
    variants = [
        {"VariantName": "blue", "ModelName": "xgb-config", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
    ]  # fmt: skip
    arn = client.create_endpoint_config(EndpointConfigName="cfg-1", ProductionVariants=variants)
    assert arn["EndpointConfigArn"] == f"{ARN}:endpoint-config/cfg-1"
    described = shaped(
        "DescribeEndpointConfig", client.describe_endpoint_config(EndpointConfigName="cfg-1")
    )
    assert described["ProductionVariants"][0]["ModelName"] == "xgb-config"
    unknown = [dict(variants[0], ModelName="no-such-model")]
    assert refused(
        client.create_endpoint_config, EndpointConfigName="cfg-2", ProductionVariants=unknown
    ) == (
        "ValidationException",
        f'Could not find model "{ARN}:model/no-such-model".',
    )
    asynchronous = {"OutputConfig": {"S3OutputPath": "s3://b/async"}}
    _, message = refused(
        client.create_endpoint_config, EndpointConfigName="cfg-3", ProductionVariants=variants,
        AsyncInferenceConfig=asynchronous,
    )  # fmt: skip
    assert "AsyncInferenceConfig is not supported by Skiff" in message
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 10,
               "DestinationS3Uri": "s3://b/capture", "CaptureOptions": [{"CaptureMode": "Input"}]}  # fmt: skip
    client.create_endpoint_config(
        EndpointConfigName="cfg-4", ProductionVariants=variants, DataCaptureConfig=capture
    )
    described = client.describe_endpoint_config(EndpointConfigName="cfg-4")
    assert described["DataCaptureConfig"]["InitialSamplingPercentage"] == 10
    client.delete_endpoint_config(EndpointConfigName="cfg-4")
    assert refused(
        client.create_endpoint_config, EndpointConfigName="cfg-1", ProductionVariants=variants
    )[1] == (
        f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/cfg-1".'
    )
    listed = client.list_endpoint_configs(NameContains="cfg")["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == ["cfg-1"]
    client.add_tags(ResourceArn=arn["EndpointConfigArn"], Tags=[{"Key": "team", "Value": "ml"}])
    assert client.list_tags(ResourceArn=arn["EndpointConfigArn"])["Tags"] == [
        {"Key": "team", "Value": "ml"}
    ]
    client.delete_endpoint_config(EndpointConfigName="cfg-1")
    assert refused(client.describe_endpoint_config, EndpointConfigName="cfg-1")[1] == (
        f'Could not find endpoint configuration "{ARN}:endpoint-config/cfg-1".'
    )


def test_a_hosted_model_loads_checked_and_predicts_as_xgboost_does(
    quiet_api, quiet_store, booster, tmp_path
):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(archive_bytes(bytes(booster.save_raw("json"))))
    client = sagemaker(quiet_api)
    client.create_model(**model_request("xgb-load", f"file://{path}"))
    loaded = load_hosted(quiet_store, "xgb-load")
    rows = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(rows), booster.inplace_predict(rows), rtol=1e-6)
    path.write_bytes(archive_bytes(bytes(booster.save_raw("ubj"))))  # changed after CreateModel
    with pytest.raises(
        ModelLoadError, match=r"xgb-load: .*model.tar.gz changed since the model was created"
    ):
        load_hosted(quiet_store, "xgb-load")
    legacy = tmp_path / "legacy.tar.gz"
    legacy.write_bytes(archive_bytes(b"binf" + bytes(100) + b"gbtree"))
    client.create_model(**model_request("xgb-legacy", f"file://{legacy}"))
    with pytest.raises(
        ModelLoadError, match=r"legacy binary format.*save it again as JSON or UBJSON"
    ):
        load_hosted(quiet_store, "xgb-legacy")


@pytest.mark.parametrize(
    ("tag", "separator"),
    [
        ("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest", ","),
        ("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1", ","),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3", ","),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.3-1", ","),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1", "\n"),
        (IMAGE, "\n"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5", "\n"),
    ],
)
def test_a_hosted_models_csv_answer_is_written_as_its_image_wrote_it(
    quiet_api, quiet_store, artifact, tag, separator
):
    # The demo notebooks parse the old images' answer with np.fromstring(text, sep=","); the
    # images since 1.5-1 answer one score a line.
    from starlette.requests import Request

    from serving.dataplane.sagemaker import scores_response

    name = f"sep-{abs(hash(tag)) % 10**8}"
    client = sagemaker(quiet_api)
    client.create_model(**model_request(name, artifact, PrimaryContainer={
        "Image": tag, "ModelDataUrl": artifact}))  # fmt: skip
    loaded = load_hosted(quiet_store, name)
    assert loaded.csv_separator == separator
    request = Request({"type": "http", "headers": [(b"accept", b"*/*")]})
    body = scores_response(np.array([0.25, 0.5]), "text/csv", request, "v", separator).body
    assert body == (b"0.25,0.5" if separator == "," else b"0.25\n0.5\n")
