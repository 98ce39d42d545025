"""Clarifai's gRPC service ``clarifai.api.V2``, serving ``PostAuditLogSearches`` (grpcio).

Runs beside uvicorn in the same process and over the same ``AuditService``. Every other
method of ``V2`` answers gRPC ``UNIMPLEMENTED`` (the servicer base class does that).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc

from ..service import AuditService
from ._api import ClarifaiSearches

#: Threads answering gRPC calls; searches are short reads, like the HTTP readers.
GRPC_WORKERS = 4


class _V2(service_pb2_grpc.V2Servicer):  # type: ignore[misc]
    def __init__(self, searches: ClarifaiSearches) -> None:
        self.searches = searches

    def PostAuditLogSearches(self, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        authorization = metadata.get("authorization")
        user_id = request.user_app_id.user_id or "me"
        return self.searches.search(
            request, authorization if isinstance(authorization, str) else None, user_id
        )


def start_grpc(service: AuditService, host: str, port: int) -> tuple[grpc.Server, int]:
    """Start serving Clarifai's gRPC API on ``host:port`` (insecure; port 0 picks one).

    Returns the running server (stop it with ``server.stop(grace)``) and its port.

    Raises:
        RuntimeError: the port can't be bound.
    """
    server = grpc.server(
        ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="tk-grpc"),
        options=[("grpc.so_reuseport", 0)],
    )
    service_pb2_grpc.add_V2Servicer_to_server(_V2(ClarifaiSearches(service)), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind the gRPC port {host}:{port}")
    server.start()
    return server, bound
