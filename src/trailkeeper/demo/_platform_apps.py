"""The reference platform's applications, models, workflows, modules and compute."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request

from ..capture import Recorder, annotate
from ._state import (
    App,
    Cluster,
    Model,
    Nodepool,
    Platform,
    PlatformError,
    User,
    Workflow,
    missing,
)

Me = Callable[[Request], User]
Body = Callable[[Request], Awaitable[dict[str, Any]]]
Field = Callable[[dict[str, Any], str], str]


def add_app_routes(
    api: FastAPI, platform: Platform, recorder: Recorder, me: Me, body: Body, field: Field
) -> None:
    """Register the app, model, workflow, module and compute endpoints on ``api``."""

    def new_workflow(app: App, workflow_id: str) -> None:
        """Create a workflow and its first version: two events of their own."""
        with recorder.operation("workflow.create") as op:
            op.add_target("app", app.id)
            op.add_target("workflow", workflow_id)
            if workflow_id in app.workflows:
                raise PlatformError(409, "ALREADY_EXISTS", f"workflow {workflow_id} exists")
            app.workflows[workflow_id] = Workflow(workflow_id)
        new_workflow_version(app, app.workflows[workflow_id])

    def new_workflow_version(app: App, workflow: Workflow) -> str:
        version = f"v{len(workflow.versions) + 1}"
        with recorder.operation("workflow.version.create") as op:
            op.add_target("workflow", workflow.id)
            op.add_target("workflow_version", version)
            workflow.versions.append(version)
        return version

    @api.post("/orgs/{org_id}/apps")
    async def create_app(org_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        org.require_member(user)
        app_id = field(data, "id")
        annotate(targets=[{"type": "app", "id": app_id}])
        if app_id in org.apps:
            raise PlatformError(409, "ALREADY_EXISTS", f"app {app_id} exists")
        app = org.apps[app_id] = App(app_id, owner=user.id, description=data.get("description", ""))
        new_workflow(app, "general")  # every new app gets a default workflow, like Clarifai's
        return {"id": app_id}

    @api.post("/orgs/{org_id}/apps/{app_id}/duplicate")
    async def duplicate_app(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        with recorder.operation("application.duplicate") as op:
            source = org.app(app_id)
            op.add_target("app", source.id)
            org.require_app_access(user, source)
            copy_id = field(data, "id")
            op.add_target("app", copy_id)
            if copy_id in org.apps:
                raise PlatformError(409, "ALREADY_EXISTS", f"app {copy_id} exists")
            copy = App(copy_id, owner=user.id, description=source.description)
            copy.models = {m: Model(m, list(x.versions)) for m, x in source.models.items()}
            copy.workflows = {w: Workflow(w, list(x.versions)) for w, x in source.workflows.items()}
            org.apps[copy_id] = copy
            op.details.append(f"Copied {len(copy.models)} models, {len(copy.workflows)} workflows")
        return {"id": copy_id}

    @api.patch("/orgs/{org_id}/apps/{app_id}")
    async def update_app(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        app = org.app(app_id)
        org.require_app_owner(user, app)
        description = field(data, "description")
        annotate(changes={"description": {"from": app.description, "to": description}})
        app.description = description
        return {"id": app_id}

    @api.delete("/orgs/{org_id}/apps/{app_id}")
    async def delete_app(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user = platform.org(org_id), me(request)
        org.require_app_owner(user, org.app(app_id))
        del org.apps[app_id]
        return {"id": app_id}

    @api.post("/orgs/{org_id}/apps/{app_id}/collaborators")
    async def add_collaborator(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        app = org.app(app_id)
        org.require_app_owner(user, app)
        who, role = field(data, "user"), data.get("role", "reviewer")
        if who not in platform.users:
            raise missing("user", who)
        app.collaborators[who] = role
        annotate(targets=[{"type": "user", "id": who}], details=[f"Role: {role}"])
        return {"user": who}

    @api.delete("/orgs/{org_id}/apps/{app_id}/collaborators/{user_id}")
    async def remove_collaborator(
        org_id: str, app_id: str, user_id: str, request: Request
    ) -> dict[str, str]:
        org, user = platform.org(org_id), me(request)
        app = org.app(app_id)
        org.require_app_owner(user, app)
        if app.collaborators.pop(user_id, None) is None:
            raise missing("collaborator", user_id)
        return {"user": user_id}

    # -- models -------------------------------------------------------------------------------

    @api.post("/orgs/{org_id}/apps/{app_id}/models")
    async def create_model(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        with recorder.operation("model.create") as op:
            app = org.app(app_id)
            op.add_target("app", app.id)
            org.require_app_access(user, app)
            model_id = field(data, "id")
            op.add_target("model", model_id)
            if model_id in app.models:
                raise PlatformError(409, "ALREADY_EXISTS", f"model {model_id} exists")
            app.models[model_id] = Model(model_id)
        return {"id": model_id}

    def model_of(org_id: str, app_id: str, model_id: str, user: User) -> Model:
        org = platform.org(org_id)
        app = org.app(app_id)
        org.require_app_access(user, app)
        model = app.models.get(model_id)
        if model is None:
            raise missing("model", model_id)
        return model

    @api.post("/orgs/{org_id}/apps/{app_id}/models/{model_id}/train")
    async def train(org_id: str, app_id: str, model_id: str, request: Request) -> dict[str, str]:
        user, data = me(request), await body(request)
        hours = float(data.get("gpu_hours", 2))
        with recorder.operation("model.train") as op:
            op.add_target("model", model_id)
            model = model_of(org_id, app_id, model_id, user)
            org = platform.org(org_id)
            gpu = data.get("gpu", "a10g")
            op.details.append(f"Training on {gpu} nodes, {hours:g} GPU hours requested")
            if hours > org.gpu_hours_left:
                raise PlatformError(
                    429, "QUOTA_EXCEEDED", f"{hours:g} GPU hours asked, {org.gpu_hours_left:g} left"
                )
            org.gpu_hours_left -= hours
            version = f"v{len(model.versions) + 1}"
            op.add_target("model_version", version)
        with recorder.operation("model.version.create") as op:
            op.add_target("model", model_id)
            op.add_target("model_version", version)
            model.versions.append(version)
        return {"version": version}

    @api.post("/orgs/{org_id}/apps/{app_id}/models/{model_id}/publish")
    async def publish_model(
        org_id: str, app_id: str, model_id: str, request: Request
    ) -> dict[str, str]:
        user = me(request)
        with recorder.operation("model.publish") as op:
            op.add_target("model", model_id)
            model = model_of(org_id, app_id, model_id, user)
            org = platform.org(org_id)
            org.require_app_owner(user, org.app(app_id))
            if not model.versions:
                raise PlatformError(412, "NO_VERSION", f"model {model_id} has no trained version")
            op.add_target("model_version", model.versions[-1])
            op.change("visibility", "private", "public")
            model.published = True
        return {"id": model_id}

    @api.delete("/orgs/{org_id}/apps/{app_id}/models/{model_id}")
    async def delete_model(
        org_id: str, app_id: str, model_id: str, request: Request
    ) -> dict[str, str]:
        model_of(org_id, app_id, model_id, me(request))
        del platform.org(org_id).app(app_id).models[model_id]
        return {"id": model_id}

    # -- workflows and modules ----------------------------------------------------------------

    @api.post("/orgs/{org_id}/apps/{app_id}/workflows")
    async def create_workflow(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        app = org.app(app_id)
        org.require_app_access(user, app)
        workflow_id = field(data, "id")
        new_workflow(app, workflow_id)
        return {"id": workflow_id}

    def workflow_of(org_id: str, app_id: str, workflow_id: str, user: User) -> Workflow:
        org = platform.org(org_id)
        app = org.app(app_id)
        org.require_app_access(user, app)
        workflow = app.workflows.get(workflow_id)
        if workflow is None:
            raise missing("workflow", workflow_id)
        return workflow

    @api.post("/orgs/{org_id}/apps/{app_id}/workflows/{workflow_id}/versions")
    async def add_version(
        org_id: str, app_id: str, workflow_id: str, request: Request
    ) -> dict[str, str]:
        workflow = workflow_of(org_id, app_id, workflow_id, me(request))
        version = new_workflow_version(platform.org(org_id).app(app_id), workflow)
        return {"version": version}

    @api.post("/orgs/{org_id}/apps/{app_id}/workflows/{workflow_id}/publish")
    async def publish_workflow(
        org_id: str, app_id: str, workflow_id: str, request: Request
    ) -> dict[str, str]:
        user = me(request)
        with recorder.operation("workflow.publish") as op:
            op.add_target("workflow", workflow_id)
            workflow = workflow_of(org_id, app_id, workflow_id, user)
            org = platform.org(org_id)
            org.require_app_owner(user, org.app(app_id))
            workflow.published = True
        return {"id": workflow_id}

    @api.post("/orgs/{org_id}/apps/{app_id}/modules")
    async def create_module(org_id: str, app_id: str, request: Request) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        app = org.app(app_id)
        org.require_app_access(user, app)
        module_id = field(data, "id")
        app.modules.add(module_id)
        annotate(targets=[{"type": "module", "id": module_id}])
        return {"id": module_id}

    # -- compute --------------------------------------------------------------------------------

    @api.post("/orgs/{org_id}/clusters")
    async def create_cluster(org_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        cluster_id = field(data, "id")
        org.clusters[cluster_id] = Cluster(cluster_id)
        annotate(
            targets=[{"type": "compute_cluster", "id": cluster_id}],
            details=[f"Region: {data.get('region', 'us-east-1')}"],
        )
        return {"id": cluster_id}

    def cluster_of(org_id: str, cluster_id: str) -> Cluster:
        cluster = platform.org(org_id).clusters.get(cluster_id)
        if cluster is None:
            raise missing("compute cluster", cluster_id)
        return cluster

    @api.post("/orgs/{org_id}/clusters/{cluster_id}/nodepools")
    async def create_nodepool(org_id: str, cluster_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        cluster, nodepool_id = cluster_of(org_id, cluster_id), field(data, "id")
        cluster.nodepools[nodepool_id] = Nodepool(nodepool_id)
        annotate(
            targets=[{"type": "nodepool", "id": nodepool_id}],
            details=[f"Instance type: {data.get('instance', 'g5.xlarge')}"],
        )
        return {"id": nodepool_id}

    def nodepool_of(org_id: str, cluster_id: str, nodepool_id: str) -> Nodepool:
        nodepool = cluster_of(org_id, cluster_id).nodepools.get(nodepool_id)
        if nodepool is None:
            raise missing("nodepool", nodepool_id)
        return nodepool

    @api.post("/orgs/{org_id}/clusters/{cluster_id}/nodepools/{nodepool_id}/deployments")
    async def deploy(
        org_id: str, cluster_id: str, nodepool_id: str, request: Request
    ) -> dict[str, str]:
        org, user, data = platform.org(org_id), me(request), await body(request)
        org.require_member(user)
        nodepool, deployment_id = nodepool_of(org_id, cluster_id, nodepool_id), field(data, "id")
        nodepool.deployments.add(deployment_id)
        annotate(targets=[{"type": "deployment", "id": deployment_id}])
        return {"id": deployment_id}

    @api.delete(
        "/orgs/{org_id}/clusters/{cluster_id}/nodepools/{nodepool_id}/deployments/{deployment_id}"
    )
    async def undeploy(
        org_id: str, cluster_id: str, nodepool_id: str, deployment_id: str, request: Request
    ) -> dict[str, str]:
        platform.org(org_id).require_admin(me(request))
        nodepool = nodepool_of(org_id, cluster_id, nodepool_id)
        if deployment_id not in nodepool.deployments:
            raise missing("deployment", deployment_id)
        nodepool.deployments.discard(deployment_id)
        return {"id": deployment_id}
