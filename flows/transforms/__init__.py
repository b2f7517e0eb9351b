"""Batch transform jobs: score a whole data set with a model on a backend (``jobs``), as the
``transform`` Prefect flow (``flow``) with its artifacts (``report``), from ``skiff transform``
and from SageMaker's CreateTransformJob (``flows/api/transforms.py``)."""
