"""The SageMaker Python SDK (v2) on Skiff, as the 2021 demo notebook uses it: its session's
clients pointed at ``skiff api`` (CloudWatch Logs through ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``),
S3 on moto. Fit with streamed logs, register and approve, deploy the estimator and the model
package, predict the test set, attach, delete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from algorithms.classification_metrics import classification_metrics
from flows import cli

pytestmark = pytest.mark.slow
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


@pytest.fixture(scope="module")
def sdk(api, tmp_path_factory):
    """``sagemaker`` imported with its telemetry off (its documented opt-out), CloudWatch
    Logs at Skiff through the standard variable."""
    config = tmp_path_factory.mktemp("sdk") / "config.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
        env.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", api.url)
        env.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        import boto3
        import sagemaker

        yield sagemaker, boto3


def session(sdk, api, bucket: str):
    sagemaker, boto3 = sdk
    return sagemaker.Session(
        boto_session=boto3.Session(region_name="us-east-1"),
        sagemaker_client=boto3.client("sagemaker", endpoint_url=api.url),
        sagemaker_runtime_client=boto3.client("sagemaker-runtime", endpoint_url=api.url),
        default_bucket=bucket,
    )


def test_the_notebook_fits_registers_deploys_predicts_and_deletes(sdk, api, demo, capfd):
    sagemaker, _ = sdk
    sess = session(sdk, api, demo.bucket)
    client = sess.sagemaker_client
    try:
        notebook(sagemaker, sess, api, demo, capfd)
    finally:  # whatever failed, no endpoint server outlives the test
        for endpoint in client.list_endpoints(NameContains="sdk-")["Endpoints"]:
            client.delete_endpoint(EndpointName=endpoint["EndpointName"])


def notebook(sagemaker, sess, api, demo, capfd) -> None:
    client = sess.sagemaker_client
    prefix = "sagemaker/xgboost-dm"
    container = sagemaker.image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    inputs = {
        channel: sagemaker.inputs.TrainingInput(
            s3_data=f"s3://{demo.bucket}/{prefix}/{channel}", content_type="csv"
        )
        for channel in ("train", "validation")
    }
    xgb = sagemaker.estimator.Estimator(
        container,
        ROLE,
        instance_count=1,
        instance_type="ml.m4.xlarge",
        output_path=f"s3://{demo.bucket}/{prefix}/sdk-output",
        sagemaker_session=sess,
        base_job_name="sdk-xgboost",
    )
    xgb.set_hyperparameters(
        max_depth=5, eta=0.2, gamma=4, min_child_weight=6, subsample=0.8, silent=0,
        objective="binary:logistic", num_round=100,
    )  # fmt: skip
    xgb.fit(inputs)  # logs=True: the job's log streamed from CloudWatch Logs (Skiff's)
    printed = capfd.readouterr().out
    assert "[99]" in printed and "validation-auc" in printed, printed[-3000:]
    job = xgb.latest_training_job.name

    # Registered, then approved through the API: the registry's own approval.
    package = xgb.register(
        content_types=["text/csv"], response_types=["text/csv"],
        inference_instances=["ml.m4.xlarge"], transform_instances=["ml.m4.xlarge"],
        model_package_group_name="sdk-bank-marketing", approval_status="PendingManualApproval",
        description="the notebook's model",
    )  # fmt: skip
    arn = package.model_package_arn
    described = client.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["MetadataProperties"]["GeneratedBy"].endswith(f":training-job/{job}")
    client.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="AUC ≥ 0.76"
    )
    cli.main(["--store", api.store.root, "models", "list", "--group", "sdk-bank-marketing"])
    listed = capfd.readouterr().out
    assert "sdk-bank-marketing" in listed and "Approved" in listed and job in listed, listed

    # The estimator's deploy and the package's, side by side (the SDK waits 30 s before it
    # first looks at an endpoint: once for both).
    csv = sagemaker.serializers.CSVSerializer()
    registered = sagemaker.ModelPackage(role=ROLE, model_package_arn=arn, sagemaker_session=sess)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(
            xgb.deploy, initial_instance_count=1, instance_type="ml.m4.xlarge",
            serializer=csv, endpoint_name="sdk-estimator",
        )  # fmt: skip
        second = pool.submit(registered.deploy, 1, "ml.m4.xlarge", endpoint_name="sdk-package")
        predictor = first.result()
        second.result()
    test = demo.frames["test"]
    rows, labels = test.drop(columns=["y_yes"]).to_numpy(), test["y_yes"].to_numpy()
    # In 500-row batches as the notebook does; the 1.7-1 image answers one score a line.
    chunks = np.array_split(rows, int(rows.shape[0] / 500.0 + 1))
    text = "".join(predictor.predict(chunk).decode("utf-8") for chunk in chunks)
    scores = np.array(text.splitlines(), dtype=float)
    assert len(scores) == len(rows)
    metrics = classification_metrics(labels, scores)
    assert metrics["auc"] >= 0.76 and metrics["error_rate"] <= 0.11, metrics
    from_package = sagemaker.Predictor("sdk-package", sagemaker_session=sess, serializer=csv)
    served = np.array(from_package.predict(rows[:20]).decode().splitlines(), dtype=float)
    np.testing.assert_allclose(served, scores[:20], rtol=1e-5)

    attached = sagemaker.estimator.Estimator.attach(job, sagemaker_session=sess)
    assert attached.model_data == xgb.model_data

    for gone in (predictor, from_package):
        gone.delete_model()
        gone.delete_endpoint(delete_endpoint_config=True)
    assert client.list_endpoints(NameContains="sdk-")["Endpoints"] == []
