import pytest

from versions import selectors, services
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from versions.models import Role

pytestmark = pytest.mark.django_db


def test_commits_are_numbered_from_one_with_parent_and_variables(project, user):
    prompt = services.prompt_create(project=project, name="system", actor=user)

    first = services.prompt_version_commit(prompt=prompt, template="You are {{ role }}.", actor=user, message="init")
    second = services.prompt_version_commit(prompt=prompt, template="You are {{role}} for {{ team }}.", actor=user, model_params={"temperature": 0})

    assert (first.number, second.number) == (1, 2)
    assert second.parent == first
    assert second.variables == ["role", "team"]
    assert second.model_params == {"temperature": 0}
    assert len(second.sha256) == 64 and second.sha256 != first.sha256


def test_identical_content_to_head_is_refused(project, user):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    services.prompt_version_commit(prompt=prompt, template="Be safe.", actor=user)

    with pytest.raises(Conflict, match="identical to the head, version 1"):
        services.prompt_version_commit(prompt=prompt, template="Be safe.", actor=user)

    prompt.refresh_from_db()
    assert prompt.version_count == 1
    assert services.prompt_version_commit(prompt=prompt, template="Be safe!", actor=user).number == 2


def test_render_names_missing_and_unknown_variables(project, user):
    prompt = services.prompt_create(project=project, name="greet", actor=user)
    version = services.prompt_version_commit(prompt=prompt, template="Hello {{ name }} from {{ place }}", actor=user)

    assert services.prompt_render(prompt_version=version, variables={"name": "Ada", "place": "Paris"}) == "Hello Ada from Paris"
    with pytest.raises(ValidationFailed) as error:
        services.prompt_render(prompt_version=version, variables={"name": "Ada", "color": "red"})
    assert str(error.value) == "Cannot render greet@v1: missing variable: place; unknown variable: color."
    assert error.value.fields == {"place": ["Missing variable."], "color": ["Unknown variable."]}


def test_viewer_cannot_commit_and_non_member_does_not_see_the_project(project, make_user):
    viewer = make_user("vera", role=Role.VIEWER, project=project)
    stranger = make_user("sam")
    prompt = services.prompt_create(project=project, name="system", actor=project.memberships.get(role=Role.ADMIN).user)

    with pytest.raises(Forbidden, match="needs the editor role"):
        services.prompt_version_commit(prompt=prompt, template="x", actor=viewer)
    with pytest.raises(NotFound):
        services.prompt_version_commit(prompt=prompt, template="x", actor=stranger)


def test_duplicate_prompt_name_is_a_conflict(project, user):
    services.prompt_create(project=project, name="system", actor=user)
    with pytest.raises(Conflict, match="already exists"):
        services.prompt_create(project=project, name="system", actor=user)


def test_diff_gives_unified_and_side_by_side(project, user):
    prompt = services.prompt_create(project=project, name="system", actor=user)
    old = services.prompt_version_commit(prompt=prompt, template="line one\nline two\n", actor=user)
    new = services.prompt_version_commit(prompt=prompt, template="line one\nline 2\nline three\n", actor=user)

    diff = selectors.versions_diff(old=old, new=new)

    assert diff["unified"] == ("--- system@v1\n+++ system@v2\n@@ -1,2 +1,3 @@\n line one\n-line two\n+line 2\n+line three\n")
    assert diff["side_by_side"] == [
        {"op": "equal", "old_line": 1, "old": "line one", "new_line": 1, "new": "line one"},
        {"op": "replace", "old_line": 2, "old": "line two", "new_line": 2, "new": "line 2"},
        {"op": "insert", "old_line": None, "old": None, "new_line": 3, "new": "line three"},
    ]
