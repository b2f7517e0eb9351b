"""The records a store holds, and the one way every kind is written and read.

Layout under the store root::

    skiff-store.json                          the layout version
    jobs/<name>/job.json                      a training job's spec, claimed (names are unique)
    jobs/<name>/status.json                   its status, transitions, failure reason, metrics
    jobs/<name>/log.txt, stop-requested       its log; the marker that asks it to stop
    jobs/<name>/output/<model>, model.json    the model, then its manifest (published last)
    registry/<group>/<n>/version.json         model version n, claimed whole (never changes)
    registry/<group>/<n>/approval.json        its approval status and history
    endpoints/<name>/configs/<n>.json         every config an endpoint had, claimed in turn
    endpoints/<name>/config.json              the current one (what servers poll)
    hosting/models/<name>.json                a hosted model (SageMaker's CreateModel)
    hosting/endpoint-configs/<name>.json      a named endpoint config (CreateEndpointConfig)
    hosting/endpoints/<name>.json             which named config an endpoint was made from
    tags/<kind>/<name>.json                   a resource's tags (skiff api)

The rules (``base.Records``): a name or number is claimed by creating its first object
exclusively and complete; objects are written whole; what names a set of objects is
published last, so readers trust what it names; reads are typed (pydantic models).
"""
