"""The operation catalogue: Clarifai's event types, our own operations, look-ups, registration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trailkeeper.events import (
    BUILTIN_OPERATIONS,
    TARGET_TYPES,
    Catalogue,
    ClarifaiEventType,
    EventRules,
    Operation,
    UnknownOperationError,
    operation_from_config,
    parse_event,
)

#: (operation, Clarifai EventType name, Clarifai EventType number), from Clarifai's API.
CLARIFAI_EVENT_TYPES: list[tuple[str, str, int]] = [
    ("organization.member.add", "ORGANIZATION_MEMBER_ADD", 100),
    ("organization.member.change", "ORGANIZATION_MEMBER_CHANGE", 101),
    ("organization.member.remove", "ORGANIZATION_MEMBER_REMOVE", 102),
    ("organization.invitation.create", "ORGANIZATION_MEMBER_INVITATION_CREATE", 103),
    ("organization.invitation.cancel", "ORGANIZATION_MEMBER_INVITATION_CANCEL", 104),
    ("organization.invitation.accept", "ORGANIZATION_MEMBER_INVITATION_ACCEPT", 105),
    ("organization.invitation.decline", "ORGANIZATION_MEMBER_INVITATION_DECLINE", 106),
    ("team.create", "ORGANIZATION_TEAM_CREATE", 107),
    ("team.update", "ORGANIZATION_TEAM_UPDATE", 108),
    ("team.delete", "ORGANIZATION_TEAM_DELETE", 109),
    ("team.member.add", "ORGANIZATION_TEAM_MEMBER_ADD", 110),
    ("team.member.remove", "ORGANIZATION_TEAM_MEMBER_REMOVE", 111),
    ("team.app.add", "ORGANIZATION_TEAM_APP_ADD", 112),
    ("team.app.remove", "ORGANIZATION_TEAM_APP_REMOVE", 113),
    ("model.create", "MODEL_CREATE", 300),
    ("model.update", "MODEL_UPDATE", 301),
    ("model.delete", "MODEL_DELETE", 302),
    ("model.version.create", "MODEL_VERSION_CREATE", 303),
    ("model.version.update", "MODEL_VERSION_UPDATE", 304),
    ("model.version.delete", "MODEL_VERSION_DELETE", 305),
    ("workflow.create", "WORKFLOW_CREATE", 400),
    ("workflow.update", "WORKFLOW_UPDATE", 401),
    ("workflow.delete", "WORKFLOW_DELETE", 402),
    ("workflow.version.create", "WORKFLOW_VERSION_CREATE", 403),
    ("workflow.version.update", "WORKFLOW_VERSION_UPDATE", 404),
    ("workflow.version.delete", "WORKFLOW_VERSION_DELETE", 405),
    ("application.create", "APPLICATION_CREATE", 600),
    ("application.update", "APPLICATION_UPDATE", 601),
    ("application.delete", "APPLICATION_DELETE", 602),
    ("collaborator.add", "COLLABORATOR_ADD", 700),
    ("collaborator.update", "COLLABORATOR_UPDATE", 701),
    ("collaborator.remove", "COLLABORATOR_REMOVE", 702),
    ("user.update", "USER_UPDATE", 800),
    ("compute_cluster.create", "COMPUTE_CLUSTER_CREATE", 900),
    ("compute_cluster.delete", "COMPUTE_CLUSTER_DELETE", 901),
    ("compute_cluster.update", "COMPUTE_CLUSTER_UPDATE", 902),
    ("nodepool.create", "NODEPOOL_CREATE", 1000),
    ("nodepool.update", "NODEPOOL_UPDATE", 1001),
    ("nodepool.delete", "NODEPOOL_DELETE", 1002),
    ("deployment.create", "DEPLOYMENT_CREATE", 1100),
    ("deployment.update", "DEPLOYMENT_UPDATE", 1101),
    ("deployment.delete", "DEPLOYMENT_DELETE", 1102),
]

#: Operations Clarifai's audit log leaves out, which Trailkeeper records as well.
OWN_OPERATIONS: list[str] = [
    "organization.create",
    "organization.update",
    "organization.delete",
    "organization.member.leave",
    "application.duplicate",
    "application.owner.change",
    "model.train",
    "model.publish",
    "model.unpublish",
    "workflow.publish",
    "workflow.unpublish",
    "module.create",
    "module.update",
    "module.delete",
    "module.version.create",
    "module.version.update",
    "module.version.delete",
    "module.install",
    "module.uninstall",
    "dataset.create",
    "dataset.update",
    "dataset.delete",
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "api_key.create",
    "api_key.revoke",
    "secret.create",
    "secret.update",
    "secret.delete",
    "audit_log.search",
    "audit_log.export",
    "audit_log.stream",
    "audit_log.key.create",
    "audit_log.key.revoke",
    "audit_log.retention.change",
]

CATALOGUE = Catalogue.default()


def custom(name: str, *targets: str, clarifai: ClarifaiEventType | None = None) -> Operation:
    return Operation(name, f"{name} happened", targets, clarifai)


# -- Clarifai's event types -------------------------------------------------------------------


def test_the_clarifai_table_has_42_distinct_event_types() -> None:
    assert len(CLARIFAI_EVENT_TYPES) == 42
    assert len({name for name, _, _ in CLARIFAI_EVENT_TYPES}) == 42
    assert len({clarifai for _, clarifai, _ in CLARIFAI_EVENT_TYPES}) == 42
    assert len({number for _, _, number in CLARIFAI_EVENT_TYPES}) == 42


@pytest.mark.parametrize(("name", "clarifai_name", "number"), CLARIFAI_EVENT_TYPES)
def test_each_clarifai_event_type_maps_to_its_operation(
    name: str, clarifai_name: str, number: int
) -> None:
    operation = CATALOGUE.get(name)
    assert operation.name == name
    assert operation.clarifai is not None
    assert operation.clarifai.name == clarifai_name
    assert operation.clarifai.number == number
    assert operation.clarifai.description
    assert CATALOGUE.by_clarifai_number()[number] is operation


def test_exactly_the_42_clarifai_event_types_carry_a_clarifai_identity() -> None:
    with_clarifai = {
        (op.name, op.clarifai.name, op.clarifai.number)
        for op in BUILTIN_OPERATIONS
        if op.clarifai is not None
    }
    assert with_clarifai == set(CLARIFAI_EVENT_TYPES)
    assert set(CATALOGUE.by_clarifai_number()) == {n for _, _, n in CLARIFAI_EVENT_TYPES}


# -- Trailkeeper's own operations -------------------------------------------------------------


@pytest.mark.parametrize("name", OWN_OPERATIONS)
def test_each_required_own_operation_exists_without_a_clarifai_identity(name: str) -> None:
    assert name in CATALOGUE
    operation = CATALOGUE.get(name)
    assert operation.name == name
    assert operation.clarifai is None


def test_the_builtin_catalogue_is_the_clarifai_types_plus_our_own() -> None:
    expected = {name for name, _, _ in CLARIFAI_EVENT_TYPES} | set(OWN_OPERATIONS)
    assert {op.name for op in BUILTIN_OPERATIONS} == expected
    assert len(BUILTIN_OPERATIONS) == len(expected) == len(CATALOGUE)


@pytest.mark.parametrize("operation", BUILTIN_OPERATIONS, ids=lambda op: op.name)
def test_every_operation_has_a_description_and_known_target_types(operation: Operation) -> None:
    assert operation.description.strip()
    assert operation.target_types
    assert set(operation.target_types) <= TARGET_TYPES
    assert len(set(operation.target_types)) == len(operation.target_types)


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        ("model.version.create", "model"),
        ("audit_log.key.create", "audit_log"),
        ("auth.login", "auth"),
    ],
)
def test_an_operations_resource_is_the_first_part_of_its_name(name: str, resource: str) -> None:
    assert CATALOGUE.get(name).resource == resource


def test_every_builtin_operation_is_accepted_by_event_validation() -> None:
    rules = EventRules(catalogue=CATALOGUE)
    received_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    for operation in BUILTIN_OPERATIONS:
        raw = {"operation": operation.name, "actor": "alice"}
        event = parse_event(raw, org_id="acme", received_at=received_at, rules=rules).event
        assert event.description == operation.description


# -- look-ups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("model.creat", "model.create"),
        ("models.create", "model.create"),
        ("auth.signin", "auth.login"),
        ("nodepool.destroy", "nodepool.delete"),
    ],
)
def test_an_unknown_name_raises_with_suggestions(name: str, suggested: str) -> None:
    with pytest.raises(UnknownOperationError) as info:
        CATALOGUE.get(name)
    assert info.value.name == name
    assert suggested in info.value.suggestions
    assert len(info.value.suggestions) <= 3
    assert str(info.value).startswith(f"unknown operation {name!r}; did you mean ")
    assert repr(suggested) in str(info.value)


def test_an_unknown_name_far_from_any_known_one_has_no_suggestions() -> None:
    with pytest.raises(UnknownOperationError) as info:
        CATALOGUE.get("zzz")
    assert info.value.suggestions == []
    assert str(info.value) == "unknown operation 'zzz'"


def test_an_unknown_operation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown operation 'nope'"):
        CATALOGUE.get("nope")


def test_membership_is_by_exact_name() -> None:
    assert "model.create" in CATALOGUE
    assert "model" not in CATALOGUE
    assert "Model.Create" not in CATALOGUE
    assert "model.*" not in CATALOGUE


def test_a_prefix_pattern_expands_to_every_operation_under_it() -> None:
    names = CATALOGUE.matching("model.*")
    assert set(names) == {
        "model.create",
        "model.update",
        "model.delete",
        "model.version.create",
        "model.version.update",
        "model.version.delete",
        "model.train",
        "model.publish",
        "model.unpublish",
    }
    assert len(names) == len(set(names))


def test_a_deeper_prefix_pattern_expands_to_its_own_operations_only() -> None:
    assert set(CATALOGUE.matching("model.version.*")) == {
        "model.version.create",
        "model.version.update",
        "model.version.delete",
    }
    assert set(CATALOGUE.matching("audit_log.key.*")) == {
        "audit_log.key.create",
        "audit_log.key.revoke",
    }


def test_a_prefix_pattern_matches_whole_name_parts_only() -> None:
    catalogue = Catalogue.default(extra=[custom("teamwork.create")])
    assert "teamwork.create" not in catalogue.matching("team.*")
    assert set(catalogue.matching("team.*")) == {
        "team.create",
        "team.update",
        "team.delete",
        "team.member.add",
        "team.member.remove",
        "team.app.add",
        "team.app.remove",
    }


def test_an_exact_name_pattern_matches_itself() -> None:
    assert CATALOGUE.matching("auth.login") == ["auth.login"]


@pytest.mark.parametrize("pattern", ["billing.*", "model.train.*", "modle.*"])
def test_a_prefix_pattern_matching_nothing_is_refused(pattern: str) -> None:
    with pytest.raises(UnknownOperationError, match="unknown operation") as info:
        CATALOGUE.matching(pattern)
    assert info.value.name == pattern


def test_a_refused_prefix_pattern_suggests_close_names() -> None:
    with pytest.raises(UnknownOperationError) as info:
        CATALOGUE.matching("auth.logi.*")
    assert "auth.login" in info.value.suggestions


@pytest.mark.parametrize("pattern", ["model*", "*", "model.creat"])
def test_an_unknown_name_that_is_not_a_prefix_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(UnknownOperationError):
        CATALOGUE.matching(pattern)


# -- registration -----------------------------------------------------------------------------


def test_a_registered_operation_can_be_looked_up_and_used_in_events() -> None:
    catalogue = Catalogue.default()
    operation = custom("billing.invoice.pay", "organization", "user")
    catalogue.register(operation)
    assert "billing.invoice.pay" in catalogue
    assert catalogue.get("billing.invoice.pay") is operation
    assert catalogue.matching("billing.*") == ["billing.invoice.pay"]
    assert len(catalogue) == len(BUILTIN_OPERATIONS) + 1
    received_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    event = parse_event(
        {"operation": "billing.invoice.pay", "actor": "alice"},
        org_id="acme",
        received_at=received_at,
        rules=EventRules(catalogue=catalogue),
    ).event
    assert event.description == "billing.invoice.pay happened"


def test_registering_in_one_catalogue_leaves_others_alone() -> None:
    catalogue = Catalogue.default()
    catalogue.register(custom("billing.pay", "organization"))
    assert "billing.pay" not in Catalogue.default()
    assert "billing.pay" not in CATALOGUE


def test_the_default_catalogue_takes_extra_operations() -> None:
    catalogue = Catalogue.default(extra=[custom("billing.pay"), custom("billing.refund")])
    assert {"billing.pay", "billing.refund"} <= {op.name for op in catalogue}


def test_a_registered_operation_with_a_clarifai_identity_is_found_by_number() -> None:
    catalogue = Catalogue.default()
    clarifai = ClarifaiEventType("BILLING_PAY", 5000, "Invoices paid")
    catalogue.register(custom("billing.pay", "organization", clarifai=clarifai))
    assert catalogue.by_clarifai_number()[5000].name == "billing.pay"


@pytest.mark.parametrize(
    "name",
    [
        "billing",
        "Billing.pay",
        "billing.Pay",
        "billing..pay",
        "billing.pay.",
        ".billing.pay",
        "billing.pay!",
        "billing-ops.pay",
        "billing pay",
        "1billing.pay",
        "billing.1pay",
        "a.b.c.d.e",
        "billing.*",
        "",
        "billing.pay\n",
    ],
)
def test_registering_a_malformed_name_is_refused(name: str) -> None:
    catalogue = Catalogue.default()
    with pytest.raises(ValueError, match="must be dotted lower case"):
        catalogue.register(custom(name, "organization"))
    assert name not in catalogue


@pytest.mark.parametrize("name", ["billing.pay", "billing.invoice.pay", "a.b.c.d", "a2.b_c"])
def test_registering_a_well_formed_name_is_accepted(name: str) -> None:
    catalogue = Catalogue.default()
    catalogue.register(custom(name))
    assert name in catalogue


@pytest.mark.parametrize("name", ["model.create", "auth.login"])
def test_registering_a_taken_name_is_refused(name: str) -> None:
    catalogue = Catalogue.default()
    builtin = catalogue.get(name)
    with pytest.raises(ValueError, match=f"operation '{name}' is already registered"):
        catalogue.register(custom(name, "app"))
    assert catalogue.get(name) is builtin


def test_registering_the_same_custom_name_twice_is_refused() -> None:
    catalogue = Catalogue.default()
    catalogue.register(custom("billing.pay"))
    with pytest.raises(ValueError, match="already registered"):
        catalogue.register(custom("billing.pay"))


def test_registering_an_unknown_target_type_is_refused() -> None:
    catalogue = Catalogue.default()
    with pytest.raises(ValueError, match=r"names unknown target types \['invoice'\]"):
        catalogue.register(custom("billing.pay", "organization", "invoice"))
    assert "billing.pay" not in catalogue


def test_registering_a_taken_clarifai_number_is_refused() -> None:
    catalogue = Catalogue.default()
    clarifai = ClarifaiEventType("MODEL_CREATE", 300, "Models created")
    with pytest.raises(ValueError, match="300"):
        catalogue.register(custom("model.import", "app", "model", clarifai=clarifai))
    assert catalogue.by_clarifai_number()[300].name == "model.create"


# -- operations from configuration ------------------------------------------------------------


def test_an_operation_is_built_from_a_config_entry() -> None:
    operation = operation_from_config(
        {"name": "billing.pay", "description": "Invoice paid", "target_types": ["organization"]}
    )
    assert operation == Operation("billing.pay", "Invoice paid", ("organization",), None)


def test_a_config_entry_without_target_types_has_none() -> None:
    operation = operation_from_config({"name": "billing.pay", "description": "Invoice paid"})
    assert operation.target_types == ()


def test_an_operation_from_config_can_be_registered() -> None:
    catalogue = Catalogue.default()
    catalogue.register(
        operation_from_config(
            {"name": "billing.pay", "description": "Invoice paid", "target_types": ["user"]}
        )
    )
    assert catalogue.get("billing.pay").description == "Invoice paid"


@pytest.mark.parametrize(
    "entry",
    [
        {"description": "Invoice paid"},
        {"name": 5, "description": "Invoice paid"},
        {"name": "billing.pay"},
        {"name": "billing.pay", "description": ""},
        {"name": "billing.pay", "description": ["Invoice paid"]},
    ],
)
def test_a_config_entry_without_a_name_or_description_is_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="needs a string 'name' and a non-empty 'description'"):
        operation_from_config(entry)


@pytest.mark.parametrize("targets", ["organization", ["organization", 3], {"type": "user"}, None])
def test_a_config_entry_with_target_types_not_a_list_of_strings_is_refused(
    targets: object,
) -> None:
    entry = {"name": "billing.pay", "description": "Invoice paid", "target_types": targets}
    with pytest.raises(ValueError, match="'target_types' must be a list of strings"):
        operation_from_config(entry)


def test_a_config_entry_naming_an_unknown_target_type_is_refused_on_registration() -> None:
    operation = operation_from_config(
        {"name": "billing.pay", "description": "Invoice paid", "target_types": ["invoice"]}
    )
    with pytest.raises(ValueError, match="unknown target types"):
        Catalogue.default().register(operation)
