"""The canonical vocabulary is defined once (integrations.providers.base, no Django): the pure
merge uses it, and the models' choices take their values from it."""

from __future__ import annotations

from integrations import models as integration_models
from integrations.providers import base
from issues import merge
from issues import models as issue_models


def test_the_models_choices_carry_exactly_the_one_definitions_values():
    assert set(issue_models.IssueState.values) == {member.value for member in base.IssueState}
    assert set(integration_models.ConflictPolicy.values) == {
        member.value for member in base.ConflictPolicy
    }
    assert set(integration_models.DeletePolicy.values) == {
        member.value for member in base.DeletePolicy
    }


def test_the_merge_uses_the_one_definition():
    assert merge.Policy is base.ConflictPolicy
    assert merge.DeletePolicy is base.DeletePolicy
    assert merge.FIELDS is base.FIELDS
    assert frozenset(base.IssueState) == merge.STATES
