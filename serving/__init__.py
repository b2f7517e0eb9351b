"""Model endpoints: the servers that answer requests, and what starts, updates and stops them.

- ``dataplane``: what runs in an endpoint's server process (routing table, protocols,
  middleware, the process itself);
- ``control``: what commands and flows use (start and stop servers, deploy, blue/green
  rollouts, the HTTP client);
- ``contract``: what the two agree on (the state file, the status document, metric names);
- ``options``: a server's processes, security and limits; ``http_status``: each error's status.
"""
