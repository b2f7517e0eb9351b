"""The model registry through SageMaker's model-package API and Search (boto3's client, no
endpoint runs): groups, packages made through the API and by the pipeline, one approval
history for both doors, deploying only what is approved."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xgboost as xgb

from algorithms.archive import archive_bytes
from core.records.jobs import JobStore, TrainingJob
from core.records.registry import Approval, ModelRegistry, ModelVersion
from flows import cli
from serving.dataplane.loading import load_hosted
from tests.api.conftest import sagemaker
from tests.api.test_hosting_records import IMAGE, refused
from tests.api.test_records import shaped

ARN = "arn:aws:sagemaker:us-east-1:000000000000"


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=x[:, 1] > 0), 5)


@pytest.fixture(scope="module")
def trained(quiet_store, booster, tmp_path_factory) -> str:
    """A finished API training job's artifact (recorded directly: no job runs here)."""
    path = tmp_path_factory.mktemp("packages") / "model.tar.gz"
    path.write_bytes(archive_bytes(bytes(booster.save_raw("ubj"))))
    url = f"file://{path}"
    job = TrainingJob(
        name="trained-job",
        hyperparameters={"max_depth": 5},
        channels={"train": "s3://b/train/"},
        label="y",
        features=[f"x{i}" for i in range(5)],
        output_url="s3://b/out",
        artifact_url=url,
    )
    JobStore(quiet_store).create(job)
    return url


@pytest.fixture(scope="module")
def pipeline_version(quiet_store, booster, tmp_path_factory) -> ModelVersion:
    """A version as the pipeline registers it: Skiff's own model file and its metrics."""
    path = tmp_path_factory.mktemp("pipeline") / "model.ubj"
    raw = bytes(booster.save_raw("ubj"))
    path.write_bytes(raw)
    record = ModelVersion(
        group="pipeline-group", version=0, artifact_url=f"file://{path}",
        artifact_sha256=hashlib.sha256(raw).hexdigest(), metadata_url="", predictor="xgboost",
        algorithm="xgboost", hyperparameters={"eta": 0.2}, metrics={"validation_auc": 0.81},
        job_name="pipeline-job", features=[f"x{i}" for i in range(5)],
    )  # fmt: skip
    return ModelRegistry(quiet_store).add(record, Approval.PENDING)


def package_request(url: str, **changes):
    return {
        "ModelPackageGroupName": "api-group",
        "ModelPackageDescription": "first",
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CertifyForMarketplace": False,
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/q.json"}
            }
        },
        "SkipModelValidation": "None",
    } | changes


def test_groups_are_created_described_and_listed(quiet_api, pipeline_version):
    client = sagemaker(quiet_api)
    made = client.create_model_package_group(
        ModelPackageGroupName="api-group", ModelPackageGroupDescription="the API's",
        Tags=[{"Key": "team", "Value": "growth"}],
    )  # fmt: skip
    assert made["ModelPackageGroupArn"] == f"{ARN}:model-package-group/api-group"
    assert refused(client.create_model_package_group, ModelPackageGroupName="api-group") == (
        "ValidationException",
        f"Model Package Group already exists: {ARN}:model-package-group/api-group",
    )
    described = shaped(
        "DescribeModelPackageGroup",
        client.describe_model_package_group(ModelPackageGroupName="api-group"),
    )
    assert described["ModelPackageGroupDescription"] == "the API's"
    assert described["ModelPackageGroupStatus"] == "Completed"
    # The pipeline's group is one too, made when its first version was.
    listed = shaped("ListModelPackageGroups", client.list_model_package_groups())
    names = [g["ModelPackageGroupName"] for g in listed["ModelPackageGroupSummaryList"]]
    assert sorted(names) == ["api-group", "pipeline-group"]
    first = client.list_model_package_groups(MaxResults=1, SortBy="Name", SortOrder="Ascending")
    assert [g["ModelPackageGroupName"] for g in first["ModelPackageGroupSummaryList"]] == [
        "api-group"
    ]
    assert client.list_tags(ResourceArn=made["ModelPackageGroupArn"])["Tags"] == [
        {"Key": "team", "Value": "growth"}
    ]
    assert refused(client.describe_model_package_group, ModelPackageGroupName="nope") == (
        "ValidationException",
        "ModelPackageGroup nope does not exist.",
    )


def test_a_package_is_registered_with_its_lineage_and_approved_either_way(
    quiet_api, quiet_store, trained, capsys
):
    client = sagemaker(quiet_api)
    client.create_model_package_group(ModelPackageGroupName="lineage-group")
    request = package_request(trained, ModelPackageGroupName="lineage-group", ClientToken="t-1")
    arn = client.create_model_package(**request)["ModelPackageArn"]
    assert arn == f"{ARN}:model-package/lineage-group/1"
    assert client.create_model_package(**request)["ModelPackageArn"] == arn  # a retry
    described = shaped("DescribeModelPackage", client.describe_model_package(ModelPackageName=arn))
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelPackageVersion"] == 1
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == trained
    assert described["MetadataProperties"]["GeneratedBy"] == f"{ARN}:training-job/trained-job"
    assert described["ModelMetrics"] == request["ModelMetrics"]
    version = ModelRegistry(quiet_store).get("lineage-group", 1)
    assert (version.job_name, version.hyperparameters) == ("trained-job", {"max_depth": 5})

    client.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="looks right"
    )
    cli.main(["--store", quiet_store.root, "models", "list", "--group", "lineage-group"])
    assert "Approved" in capsys.readouterr().out
    cli.main(
        ["--store", quiet_store.root, "models", "reject", "1", "--group", "lineage-group",
         "--reason", "drifted"]
    )  # fmt: skip
    described = client.describe_model_package(ModelPackageName=arn)
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Rejected",
        "drifted",
    )
    history = ModelRegistry(quiet_store).get("lineage-group", 1).approval_history
    assert [(c.status, c.by) for c in history][1] == (Approval.APPROVED, "skiff api")


def test_bad_packages_are_refused_saying_why(quiet_api, trained):
    client = sagemaker(quiet_api)
    client.create_model_package_group(ModelPackageGroupName="strict-group")
    good = package_request(trained, ModelPackageGroupName="strict-group")
    cases = [
        ({"ModelPackageGroupName": "missing-group"}, "ModelPackageGroup missing-group does not"),
        (
            {"InferenceSpecification": {"Containers": [
                {"Image": "123.dkr.ecr.us-east-1.amazonaws.com/mine:1", "ModelDataUrl": trained}
            ]}},
            "is not one of SageMaker's XGBoost images",
        ),
        (
            {"InferenceSpecification": {"Containers": [
                {"Image": IMAGE, "ModelDataUrl": trained + ".gone"}
            ]}},
            "Could not find model data at",
        ),
        ({"SourceAlgorithmSpecification": {"SourceAlgorithms": [{"AlgorithmName": "mine"}]}},
         "CreateModelPackage: SourceAlgorithmSpecification is not supported by Skiff"),
    ]  # fmt: skip
    for change, message in cases:
        code, said = refused(client.create_model_package, **(good | change))
        assert code == "ValidationException" and message in said, (change, said)
    assert (
        client.list_model_packages(ModelPackageGroupName="strict-group")["ModelPackageSummaryList"]
        == []
    )  # nothing half-made


def test_pipeline_versions_are_packages_and_only_approved_ones_deploy(
    quiet_api, quiet_store, pipeline_version, booster
):
    client = sagemaker(quiet_api)
    arn = f"{ARN}:model-package/pipeline-group/{pipeline_version.version}"
    summaries = shaped(
        "ListModelPackages", client.list_model_packages(ModelPackageGroupName="pipeline-group")
    )["ModelPackageSummaryList"]
    assert [(s["ModelPackageArn"], s["ModelApprovalStatus"]) for s in summaries] == [
        (arn, "PendingManualApproval")
    ]
    described = shaped("DescribeModelPackage", client.describe_model_package(ModelPackageName=arn))
    assert described["CustomerMetadataProperties"] == {"validation_auc": "0.81"}
    assert described["MetadataProperties"]["GeneratedBy"] == f"{ARN}:training-job/pipeline-job"

    def create(name):
        return client.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
            Containers=[{"ModelPackageName": arn}],
        )

    code, message = refused(create, name="too-soon")
    assert code == "ValidationException" and "is PendingManualApproval: only an Approved" in message
    ModelRegistry(quiet_store).set_approval("pipeline-group", 1, Approval.APPROVED, by="me")
    assert client.list_model_packages(ModelApprovalStatus="Approved")["ModelPackageSummaryList"]
    create("from-package")
    model = client.describe_model(ModelName="from-package")
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    loaded = load_hosted(quiet_store, "from-package")  # served as the registered version
    rows = np.random.default_rng(4).normal(size=(6, 5)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(rows), booster.inplace_predict(rows), rtol=1e-6)


def test_search_finds_jobs_by_artifact_and_groups_by_name(quiet_api, trained, pipeline_version):
    client = sagemaker(quiet_api)

    def search(resource, *filters, **more):
        expression = {
            "Filters": [dict(zip(("Name", "Operator", "Value"), f, strict=True)) for f in filters]
        }
        return client.search(Resource=resource, SearchExpression=expression, **more)["Results"]

    jobs = search("TrainingJob", ("ModelArtifacts.S3ModelArtifacts", "Equals", trained))
    assert [r["TrainingJob"]["TrainingJobName"] for r in jobs] == ["trained-job"]
    assert search("TrainingJob", ("ModelArtifacts.S3ModelArtifacts", "Equals", "s3://no")) == []
    assert [r["TrainingJob"]["TrainingJobName"] for r in search(
        "TrainingJob", ("HyperParameters.max_depth", "GreaterThanOrEqualTo", "5"))] == [
        "trained-job"
    ]  # fmt: skip
    groups = search("ModelPackageGroup", ("ModelPackageGroupName", "Equals", "pipeline-group"))
    assert [r["ModelPackageGroup"]["ModelPackageGroupName"] for r in groups] == ["pipeline-group"]
    packages = search(
        "ModelPackage",
        ("ModelPackageGroupName", "Equals", "pipeline-group"),
        ("CustomerMetadataProperties.validation_auc", "GreaterThan", "0.8"),
    )
    assert [r["ModelPackage"]["ModelPackageVersion"] for r in packages] == [1]
    either = search(
        "ModelPackage", ("ModelPackageGroupName", "In", "pipeline-group,lineage-group"),
        SortBy="ModelPackageGroupName", SortOrder="Ascending",
    )  # fmt: skip
    assert [r["ModelPackage"]["ModelPackageGroupName"] for r in either] == [
        "lineage-group",
        "pipeline-group",
    ]
    code, message = refused(client.search, Resource="Endpoint")
    assert code == "ValidationException" and "Resource Endpoint is not supported" in message
