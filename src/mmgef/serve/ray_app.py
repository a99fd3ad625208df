"""``mmgef serve RUN --ray ADDR``: the same FastAPI app as a Ray Serve deployment, for a cluster.

Each replica builds the app itself (``serve.ingress`` with a builder), so it loads the run once in
its own process, as a uvicorn worker does; replicas share added items and interactions through the
SQLite store, exactly as workers do. Every replica must therefore see the run directory and the
store at the same paths: one machine, or a shared file system whose locks SQLite can trust.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mmgef.serve.app import create_app


def deploy(run_dir: Path, address: str, host: str = "127.0.0.1", port: int = 8000, replicas: int = 1,
           db: Path | None = None, faiss_above: int = 50_000, cpus_per_replica: float = 1.0) -> Any:
    """Start (or join) Ray at ``address`` ("local" starts one here), deploy the app on ``replicas``
    replicas behind Ray Serve's HTTP proxy at host:port, and return the application's handle."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    run, store = str(Path(run_dir).resolve()), str(Path(db).resolve()) if db else None

    def builder() -> Any:  # a function (Ray tells a builder from an ASGI app by that), run on each replica
        return create_app(run, store, faiss_above=faiss_above)

    deployment = serve.deployment(name="mmgef", num_replicas=replicas,
                                  ray_actor_options={"num_cpus": cpus_per_replica})(serve.ingress(builder)())
    return serve.run(deployment.bind(), name="mmgef", route_prefix="/")


def serve_forever(**kwargs: Any) -> None:
    """``deploy`` and keep the driver alive until interrupted, then take the deployment down."""
    from ray import serve

    deploy(**kwargs)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
