"""``skiff api``: SageMaker's control-plane API over Skiff, so that SageMaker code (boto3's
``sagemaker`` client, the SageMaker Python SDK) runs on Skiff unmodified.

An adapter: it translates SageMaker's requests, names and errors to Skiff's operations on the
same records the ``skiff`` command and the pipeline use, and owns no storage of its own.

- ``server``: the HTTP server (AWS JSON 1.1: ``POST /``, ``X-Amz-Target: SageMaker.<Op>``)
- ``auth``: SigV4 signatures checked with botocore's own signer
- ``errors``: SageMaker's error codes and wording
- ``shapes``: requests checked against botocore's service model; what Skiff honours
- ``training``: CreateTrainingJob, StopTrainingJob (and the fields Skiff honours);
  ``training_reads``: DescribeTrainingJob, ListTrainingJobs
- ``launch``: where a job runs, and its process; ``job_flow``: that process, a Prefect flow run
- ``context``: the store, ARNs, placement every operation shares
- ``hosting`` (models, endpoint configs), ``endpoints``, ``endpoint_updates`` (with
  ``endpoint_flow``, an update's flow run), ``runtime`` (InvokeEndpoint, forwarded)
- ``logs``: the part of CloudWatch Logs that follows a training job; ``pages``: List paging
- ``tags``: AddTags, ListTags, DeleteTags
"""
