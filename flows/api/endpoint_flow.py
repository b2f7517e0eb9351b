"""An UpdateEndpoint of ``skiff api``, run as a Prefect flow run of its own (named after the
endpoint, tagged with it): ``python -m flows.api.endpoint_flow STORE ENDPOINT CONFIG
--policy JSON``. It shifts the traffic to the named config's variant blue/green
(``serving.control.rollouts``), and records the outcome in the endpoint's hosting record.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from prefect import flow, tags

from core.errors import ServingError
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.records.hosting import HostingStore
from core.store import Store
from serving.control import rollouts, servers
from serving.control.rollouts import BlueGreen, UpdatePolicy

TAG = "sagemaker-api"
OVER = {"updating_to": None, "update_pid": None, "update_failure": None, "rolling_back": False}


@flow(name="sagemaker-endpoint-update", log_prints=True)
def endpoint_update(store: str, name: str, config_name: str, policy: dict[str, Any]) -> str:
    """Update endpoint ``name`` to the named config ``config_name`` by ``policy``."""
    s = Store(store)
    hosting, configs = HostingStore(s), EndpointStore(s)
    record = hosting.endpoint(name)
    assert record is not None, f"endpoint {name} has no hosting record"
    try:
        named = hosting.config(config_name)
        server = servers.running(s, name)
        if server is None:
            raise ServingError(f"no server runs endpoint {name} on this machine")
        what = f"UpdateEndpoint {config_name}"
        if len(named.variants) == 1:
            (new,) = named.variants
            blue = {v.name for v in configs.current(name).variants}
            staged = new.name if new.name not in blue else f"{new.name[:57]}-green"
            green = Variant(name=staged, model=new.model, weight=1.0)

            def rolling_back(why: str) -> None:  # DescribeEndpoint says RollingBack meanwhile
                latest = hosting.endpoint(name) or record
                hosting.save_endpoint(latest.model_copy(update={"rolling_back": True}))

            # The new config's capture from now on; the rollout's configs carry it.
            configs.update(name, lambda c: c.model_copy(update={"capture": named.capture}))
            update = BlueGreen(configs, server, UpdatePolicy(**policy), on_rollback=rolling_back)
            update.run(green, what, new.name)
        else:  # several variants: all at once (publish puts the old config back on failure)
            variants = [
                Variant(name=v.name, model=v.model, weight=v.weight) for v in named.variants
            ]
            config = EndpointConfig(
                endpoint=name, variants=variants, reason=what, capture=named.capture
            )
            rollouts.publish(configs, config, server)
    except Exception as exc:
        hosting.save_endpoint(record.model_copy(update={**OVER, "update_failure": str(exc)}))
        raise
    hosting.save_endpoint(record.model_copy(update={**OVER, "config_name": config_name}))
    return config_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.api.endpoint_flow", description=__doc__)
    parser.add_argument("store")
    parser.add_argument("name")
    parser.add_argument("config")
    parser.add_argument("--policy", default="{}", type=json.loads)
    args = parser.parse_args(argv)
    with tags(args.name, TAG):
        state = endpoint_update.with_options(flow_run_name=f"{args.name}: {args.config}")(
            args.store, args.name, args.config, args.policy, return_state=True
        )
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
