"""Clarifai's gRPC service ``clarifai.api.V2``, serving ``PostAuditLogSearches`` (grpcio).

Runs beside uvicorn in the same process and over the same ``AuditService``. Every other
method of ``V2`` answers gRPC ``UNIMPLEMENTED`` (the servicer base class does that).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc

from .._trail import new_request_id, usable_request_id
from ..service import AuditService, RequestContext
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
        agent, request_id = metadata.get("user-agent"), metadata.get("x-request-id")
        where = RequestContext(
            source_ip=_peer_address(context.peer()),
            user_agent=agent if isinstance(agent, str) else None,
            request_id=usable_request_id(request_id if isinstance(request_id, str) else None)
            or new_request_id(),
            face="clarifai-grpc",
        )
        return self.searches.search(
            request, authorization if isinstance(authorization, str) else None, user_id, where
        )


def _peer_address(peer: str) -> str | None:
    """The address in a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or None
    return None


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
