"""The capture SDK: how applications put events into a Trailkeeper audit log.

```python
from trailkeeper.capture import AuditMiddleware, Recorder, set_default

recorder = Recorder("http://127.0.0.1:8000", key="tk_...")
set_default(recorder)
app = AuditMiddleware(
    app, actor=who_is_calling, routes={"DELETE /apps/{app_id}": "application.delete"}
)

with recorder.operation("model.create", targets=[{"type": "app", "id": app_id}]) as op:
    model = create_model(...)          # an exception records a failure, then propagates
    op.add_target("model", model.id)
```

Importing this package does not import the server stack (FastAPI, uvicorn, a database
driver); the HTTP transport uses the standard library.
"""

from ._context import RequestContext, annotate, bind, current_context, set_actor
from ._middleware import AuditMiddleware, AuditRoute
from ._operation import Operation, audited, error_of
from ._processors import Processor, add_metadata, redact_secrets
from ._recorder import Recorder, default_spool_dir, operation, record, set_default
from ._spool import Backlog, Spool
from ._transport import HttpTransport, LocalTransport, Transport, TransportError
from ._worker import Counters

__all__ = [
    "AuditMiddleware",
    "AuditRoute",
    "Backlog",
    "Counters",
    "HttpTransport",
    "LocalTransport",
    "Operation",
    "Processor",
    "Recorder",
    "RequestContext",
    "Spool",
    "Transport",
    "TransportError",
    "add_metadata",
    "annotate",
    "audited",
    "bind",
    "current_context",
    "default_spool_dir",
    "error_of",
    "operation",
    "record",
    "redact_secrets",
    "set_actor",
    "set_default",
]
