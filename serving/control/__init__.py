"""The control side of endpoints, run by commands and flows, never by a server process.

- ``servers``: start an endpoint's server on this machine, find it, watch it, stop it;
- ``deploys``: deploy a model version to an endpoint (create it, or update it blue/green);
- ``rollouts``: blue/green updates (all at once, canary, linear), weights, rollback, with
  alarms read from the server's counters (``scrapes``);
- ``client``: invoke an endpoint over HTTP.

It meets the data plane only through ``serving.contract`` and HTTP.
"""
