"""What runs inside an endpoint's server process: the data plane.

- ``plane``: the endpoint as one process holds it (``DataPlane``): the live routing table
  (``routing``), its models (``loading``), micro-batched predicts (``batching``), and the hot
  swap when the stored config changes. It knows nothing of HTTP.
- one module per protocol over it: ``sagemaker`` (SageMaker's container API, with ``parsing``
  for its bodies) and ``v2`` (the Open Inference Protocol); ``admin`` (Skiff's own status and
  Prometheus metrics, counted by ``instrumentation``);
- ``middleware``: authentication, limits and deadlines (``deadlines``);
- ``app`` assembles them; ``server`` is the process (``python -m serving.dataplane.server``).

The control side (``serving.control``) never imports this package: the two meet only through
``serving.contract`` and HTTP.
"""
