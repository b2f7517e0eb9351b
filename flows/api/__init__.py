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
- ``tags``: AddTags, ListTags, DeleteTags
"""
