"""The operation catalogue: every operation name Trailkeeper accepts.

Names are part of the public contract. Each Clarifai ``EventType`` has exactly one operation,
which keeps Clarifai's name, number and description so the Clarifai-compatible API can map both
ways. Deployments may register operations and target types of their own (see
``Catalogue.register`` and ``Catalogue.register_target_type``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

TARGET_TYPES: frozenset[str] = frozenset(
    {
        "user",
        "role",
        "team",
        "app",
        "workflow",
        "workflow_version",
        "model",
        "model_version",
        "compute_cluster",
        "nodepool",
        "deployment",
        "module",
        "module_version",
        "dataset",
        "organization",
        "invitation",
        "api_key",
        "secret",
        # AI platforms' own resources (issue #19).
        "agent",
        "tool_call",
        "prompt",
        "evaluation",
        "inference_endpoint",
        "dataset_version",
    }
)

_TARGET_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}")


@dataclass(frozen=True, slots=True)
class ClarifaiEventType:
    """Clarifai's own identity for an operation: ``EventType`` name, number, description."""

    name: str
    number: int
    description: str


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation an event can record.

    Attributes:
        name: dotted lower-case name, ``resource.verb`` or ``resource.sub.verb``.
        description: the human text an event gets when its producer gives none.
        target_types: the target types an event of this operation is expected to carry.
        clarifai: Clarifai's ``EventType`` for it, when Clarifai has one.
    """

    name: str
    description: str
    target_types: tuple[str, ...]
    clarifai: ClarifaiEventType | None = None

    @property
    def resource(self) -> str:
        """The resource group the console groups operations by (``model.version`` → ``model``)."""
        return self.name.split(".", 1)[0]


def _op(
    name: str,
    description: str,
    targets: str,
    clarifai: tuple[str, int, str] | None = None,
) -> Operation:
    return Operation(
        name=name,
        description=description,
        target_types=tuple(targets.split()),
        clarifai=ClarifaiEventType(*clarifai) if clarifai else None,
    )


BUILTIN_OPERATIONS: tuple[Operation, ...] = (
    # Organization membership and invitations (Clarifai 100-106).
    _op(
        "organization.member.add",
        "Member added to the organization",
        "organization user role",
        ("ORGANIZATION_MEMBER_ADD", 100, "Organization members added"),
    ),
    _op(
        "organization.member.change",
        "Organization member's role changed",
        "organization user role",
        ("ORGANIZATION_MEMBER_CHANGE", 101, "Organization members' roles changed"),
    ),
    _op(
        "organization.member.remove",
        "Member removed from the organization",
        "organization user",
        ("ORGANIZATION_MEMBER_REMOVE", 102, "Organization members removed"),
    ),
    _op(
        "organization.invitation.create",
        "Invitation to the organization sent",
        "organization invitation role",
        ("ORGANIZATION_MEMBER_INVITATION_CREATE", 103, "Organization member invitations created"),
    ),
    _op(
        "organization.invitation.cancel",
        "Invitation to the organization cancelled",
        "organization invitation",
        ("ORGANIZATION_MEMBER_INVITATION_CANCEL", 104, "Organization member invitations canceled"),
    ),
    _op(
        "organization.invitation.accept",
        "Invitation to the organization accepted",
        "organization invitation user",
        ("ORGANIZATION_MEMBER_INVITATION_ACCEPT", 105, "Organization member invitations accepted"),
    ),
    _op(
        "organization.invitation.decline",
        "Invitation to the organization declined",
        "organization invitation user",
        ("ORGANIZATION_MEMBER_INVITATION_DECLINE", 106, "Organization member invitations declined"),
    ),
    # Teams (107-113).
    _op(
        "team.create",
        "Team created",
        "organization team",
        ("ORGANIZATION_TEAM_CREATE", 107, "Organization teams created"),
    ),
    _op(
        "team.update",
        "Team updated",
        "organization team",
        ("ORGANIZATION_TEAM_UPDATE", 108, "Organization teams updated"),
    ),
    _op(
        "team.delete",
        "Team deleted",
        "organization team",
        ("ORGANIZATION_TEAM_DELETE", 109, "Organization teams deleted"),
    ),
    _op(
        "team.member.add",
        "Member added to a team",
        "team user",
        ("ORGANIZATION_TEAM_MEMBER_ADD", 110, "Organization team members added"),
    ),
    _op(
        "team.member.remove",
        "Member removed from a team",
        "team user",
        ("ORGANIZATION_TEAM_MEMBER_REMOVE", 111, "Organization team members removed"),
    ),
    _op(
        "team.app.add",
        "Application added to a team",
        "team app",
        ("ORGANIZATION_TEAM_APP_ADD", 112, "Organization team applications added"),
    ),
    _op(
        "team.app.remove",
        "Application removed from a team",
        "team app",
        ("ORGANIZATION_TEAM_APP_REMOVE", 113, "Organization team applications removed"),
    ),
    # Models and model versions (300-305).
    _op("model.create", "Model created", "app model", ("MODEL_CREATE", 300, "Models created")),
    _op("model.update", "Model updated", "app model", ("MODEL_UPDATE", 301, "Models updated")),
    _op("model.delete", "Model deleted", "app model", ("MODEL_DELETE", 302, "Models deleted")),
    _op(
        "model.version.create",
        "Model version created",
        "app model model_version",
        ("MODEL_VERSION_CREATE", 303, "Model versions created"),
    ),
    _op(
        "model.version.update",
        "Model version updated",
        "app model model_version",
        ("MODEL_VERSION_UPDATE", 304, "Model versions updated"),
    ),
    _op(
        "model.version.delete",
        "Model version deleted",
        "app model model_version",
        ("MODEL_VERSION_DELETE", 305, "Model versions deleted"),
    ),
    # Workflows and workflow versions (400-405).
    _op(
        "workflow.create",
        "Workflow created",
        "app workflow",
        ("WORKFLOW_CREATE", 400, "Workflows created"),
    ),
    _op(
        "workflow.update",
        "Workflow updated",
        "app workflow",
        ("WORKFLOW_UPDATE", 401, "Workflows updated"),
    ),
    _op(
        "workflow.delete",
        "Workflow deleted",
        "app workflow",
        ("WORKFLOW_DELETE", 402, "Workflows deleted"),
    ),
    _op(
        "workflow.version.create",
        "Workflow version created",
        "app workflow workflow_version",
        ("WORKFLOW_VERSION_CREATE", 403, "Workflow versions created"),
    ),
    _op(
        "workflow.version.update",
        "Workflow version updated",
        "app workflow workflow_version",
        ("WORKFLOW_VERSION_UPDATE", 404, "Workflow versions updated"),
    ),
    _op(
        "workflow.version.delete",
        "Workflow version deleted",
        "app workflow workflow_version",
        ("WORKFLOW_VERSION_DELETE", 405, "Workflow versions deleted"),
    ),
    # Applications (600-602).
    _op(
        "application.create",
        "Application created",
        "app",
        ("APPLICATION_CREATE", 600, "Applications created"),
    ),
    _op(
        "application.update",
        "Application updated",
        "app",
        ("APPLICATION_UPDATE", 601, "Applications updated"),
    ),
    _op(
        "application.delete",
        "Application deleted",
        "app",
        ("APPLICATION_DELETE", 602, "Applications deleted"),
    ),
    # Collaborators (700-702).
    _op(
        "collaborator.add",
        "Collaborator added to an application",
        "app user role",
        ("COLLABORATOR_ADD", 700, "Collaborators added"),
    ),
    _op(
        "collaborator.update",
        "Collaborator's access changed",
        "app user role",
        ("COLLABORATOR_UPDATE", 701, "Collaborators updated"),
    ),
    _op(
        "collaborator.remove",
        "Collaborator removed from an application",
        "app user",
        ("COLLABORATOR_REMOVE", 702, "Collaborators removed"),
    ),
    # Users (800).
    _op("user.update", "User profile updated", "user", ("USER_UPDATE", 800, "Users updated")),
    # Compute (900-1102). Clarifai numbers compute clusters create, delete, update.
    _op(
        "compute_cluster.create",
        "Compute cluster created",
        "compute_cluster",
        ("COMPUTE_CLUSTER_CREATE", 900, "Compute clusters created"),
    ),
    _op(
        "compute_cluster.delete",
        "Compute cluster deleted",
        "compute_cluster",
        ("COMPUTE_CLUSTER_DELETE", 901, "Compute clusters deleted"),
    ),
    _op(
        "compute_cluster.update",
        "Compute cluster updated",
        "compute_cluster",
        ("COMPUTE_CLUSTER_UPDATE", 902, "Compute clusters updated"),
    ),
    _op(
        "nodepool.create",
        "Nodepool created",
        "compute_cluster nodepool",
        ("NODEPOOL_CREATE", 1000, "Nodepools created"),
    ),
    _op(
        "nodepool.update",
        "Nodepool updated",
        "compute_cluster nodepool",
        ("NODEPOOL_UPDATE", 1001, "Nodepools updated"),
    ),
    _op(
        "nodepool.delete",
        "Nodepool deleted",
        "compute_cluster nodepool",
        ("NODEPOOL_DELETE", 1002, "Nodepools deleted"),
    ),
    _op(
        "deployment.create",
        "Deployment created",
        "nodepool deployment model model_version",
        ("DEPLOYMENT_CREATE", 1100, "Deployments created"),
    ),
    _op(
        "deployment.update",
        "Deployment updated",
        "nodepool deployment",
        ("DEPLOYMENT_UPDATE", 1101, "Deployments updated"),
    ),
    _op(
        "deployment.delete",
        "Deployment deleted",
        "nodepool deployment",
        ("DEPLOYMENT_DELETE", 1102, "Deployments deleted"),
    ),
    # What Clarifai's audit log leaves out.
    _op("organization.create", "Organization created", "organization"),
    _op("organization.update", "Organization updated", "organization"),
    _op("organization.delete", "Organization deleted", "organization"),
    _op("organization.member.leave", "Member left the organization", "organization user"),
    _op("application.duplicate", "Application duplicated", "app"),
    _op("application.owner.change", "Application ownership transferred", "app user"),
    _op("model.train", "Model training started", "app model model_version"),
    _op("model.publish", "Model published", "app model model_version"),
    _op("model.unpublish", "Model unpublished", "app model model_version"),
    _op("workflow.publish", "Workflow published", "app workflow workflow_version"),
    _op("workflow.unpublish", "Workflow unpublished", "app workflow workflow_version"),
    _op("module.create", "Module created", "app module"),
    _op("module.update", "Module updated", "app module"),
    _op("module.delete", "Module deleted", "app module"),
    _op("module.version.create", "Module version created", "app module module_version"),
    _op("module.version.update", "Module version updated", "app module module_version"),
    _op("module.version.delete", "Module version deleted", "app module module_version"),
    _op("module.install", "Module installed in an application", "app module module_version"),
    _op("module.uninstall", "Module uninstalled from an application", "app module"),
    _op("dataset.create", "Dataset created", "app dataset"),
    _op("dataset.update", "Dataset updated", "app dataset"),
    _op("dataset.delete", "Dataset deleted", "app dataset"),
    _op("auth.login", "Signed in", "user"),
    _op("auth.login_failed", "Sign-in failed", "user"),
    _op("auth.logout", "Signed out", "user"),
    _op("api_key.create", "API key created", "api_key user"),
    _op("api_key.revoke", "API key revoked", "api_key user"),
    _op("secret.create", "Secret created", "secret"),
    _op("secret.update", "Secret updated", "secret"),
    _op("secret.delete", "Secret deleted", "secret"),
    # The audit log's own trail: who read it and who changed how it is kept.
    _op("audit_log.search", "Audit log searched", "organization api_key"),
    _op("audit_log.export", "Audit log exported", "organization api_key"),
    _op("audit_log.stream", "Audit log followed live", "organization api_key"),
    _op("audit_log.key.create", "Audit log API key created", "organization api_key"),
    _op("audit_log.key.revoke", "Audit log API key revoked", "organization api_key"),
    _op("audit_log.retention.change", "Audit log retention changed", "organization"),
)


class UnknownOperationError(ValueError):
    """An operation name that is not in the catalogue."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown operation {name!r}{hint}")


@dataclass(slots=True)
class Catalogue:
    """The operations and target types a deployment accepts: the built-in ones and its own.

    Look-ups are by exact name; ``matching`` also takes a ``resource.*`` prefix pattern.
    """

    _by_name: dict[str, Operation] = field(default_factory=dict)
    _by_clarifai_number: dict[int, Operation] = field(default_factory=dict)
    _target_types: frozenset[str] = TARGET_TYPES

    @classmethod
    def default(
        cls, extra: Iterable[Operation] = (), target_types: Iterable[str] = ()
    ) -> Catalogue:
        """The built-in catalogue, plus a deployment's own target types and operations.

        Raises:
            ValueError: as ``register`` and ``register_target_type`` do.
        """
        catalogue = cls()
        for name in target_types:
            catalogue.register_target_type(name)
        for operation in BUILTIN_OPERATIONS:
            catalogue.register(operation)
        for operation in extra:
            catalogue.register(operation)
        return catalogue

    def register(self, operation: Operation) -> None:
        """Add an operation.

        Raises:
            ValueError: the name is malformed or taken, a target type is unknown, or the
                Clarifai number belongs to another operation.
        """
        if not _NAME.fullmatch(operation.name):
            raise ValueError(
                f"operation name {operation.name!r} must be dotted lower case, "
                "'resource.verb' or 'resource.sub.verb' (letters, digits, '_')"
            )
        if operation.name in self._by_name:
            raise ValueError(f"operation {operation.name!r} is already registered")
        unknown = [t for t in operation.target_types if t not in self._target_types]
        if unknown:
            raise ValueError(f"operation {operation.name!r} names unknown target types {unknown}")
        if operation.clarifai is not None:
            number = operation.clarifai.number
            taken = self._by_clarifai_number.get(number)
            if taken is not None:
                raise ValueError(f"Clarifai EventType {number} already belongs to {taken.name!r}")
        self._by_name[operation.name] = operation
        if operation.clarifai is not None:
            self._by_clarifai_number[operation.clarifai.number] = operation

    def register_target_type(self, name: str) -> None:
        """Accept targets of type ``name`` (``prompt``, ``agent``, ...) from now on.

        Registering a type already known (built in or registered) does nothing.

        Raises:
            ValueError: the name is not lower case letters, digits and ``_`` (at most 64,
                starting with a letter).
        """
        if not isinstance(name, str) or not _TARGET_TYPE.fullmatch(name):
            raise ValueError(
                f"target type {name!r} must be lower case letters, digits and '_', "
                "starting with a letter, at most 64 characters"
            )
        self._target_types = self._target_types | {name}

    @property
    def target_types(self) -> frozenset[str]:
        """Every target type an event may name: the built-in ones and the registered ones."""
        return self._target_types

    def get(self, name: str) -> Operation:
        """The operation called ``name``.

        Raises:
            UnknownOperationError: with up to three close names as suggestions.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownOperationError(name, self.suggest(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def suggest(self, name: str) -> list[str]:
        """Up to three catalogue names close to ``name``, best first."""
        return difflib.get_close_matches(name, self._by_name.keys(), n=3, cutoff=0.6)

    def matching(self, pattern: str) -> list[str]:
        """Names matching an exact name or a ``prefix.*`` pattern.

        Raises:
            UnknownOperationError: the pattern matches nothing.
        """
        if pattern.endswith(".*"):
            prefix = pattern[:-1]
            names = [n for n in self._by_name if n.startswith(prefix)]
            if not names:
                raise UnknownOperationError(pattern, self.suggest(pattern[:-2]))
            return names
        return [self.get(pattern).name]

    def by_clarifai_number(self) -> Mapping[int, Operation]:
        """Operations keyed by their Clarifai ``EventType`` number."""
        return self._by_clarifai_number


def operation_from_config(entry: Mapping[str, object]) -> Operation:
    """Build a deployment's own operation from a configuration entry.

    An entry is ``{"name": ..., "description": ..., "target_types": [...]}``.

    Raises:
        ValueError: a field is missing or of the wrong type.
    """
    name = entry.get("name")
    description = entry.get("description")
    targets = entry.get("target_types", [])
    if not isinstance(name, str) or not isinstance(description, str) or not description:
        raise ValueError("a custom operation needs a string 'name' and a non-empty 'description'")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"operation {name!r}: 'target_types' must be a list of strings")
    return Operation(name=name, description=description, target_types=tuple(targets))


def target_types_from_config(entries: object) -> list[str]:
    """A deployment's own target types from a configuration entry: a list of names.

    Raises:
        ValueError: not a list of strings.
    """
    if not isinstance(entries, list) or not all(isinstance(t, str) for t in entries):
        raise ValueError("'target_types' must be a list of strings")
    return list(entries)
