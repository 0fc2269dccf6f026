"""Prompts and their versions: commit, diff, render, tags."""

from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from core.errors import NotFound
from versions import selectors, services
from versions.api import serializers as s
from versions.models import Role
from versions.api.views.common import _valid


def _prompt(view, name):
    return view.project, selectors.prompt_get(project=view.project, name=name)


def _prompt_version_row(prompt, number):
    """One prompt version in the API's shape (the same rows as the list)."""
    rows = selectors.prompt_version_rows_complete(selectors.prompt_versions(prompt=prompt).filter(number=number))
    if not rows:
        raise NotFound(f"{prompt.name} has no version {number}.")
    return rows[0]


class PromptListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="prompts_list", tags=["prompts"], responses=s.PromptSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.prompts_for_project(project=project), serializer_class=s.PromptSerializer)

    @api_schema(operation_id="prompts_create", tags=["prompts"], request=s.PromptCreateSerializer, responses={201: s.PromptSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.PromptCreateSerializer, request.data)
        prompt = services.prompt_create(project=project, name=data["name"], description=data["description"], actor=request.user)
        return Response(s.PromptSerializer(selectors.prompts_for_project(project=project).get(pk=prompt.pk)).data, status=status.HTTP_201_CREATED)


class PromptDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="prompts_retrieve", tags=["prompts"], responses=s.PromptSerializer)
    def get(self, request, project_slug, name):
        project, prompt = _prompt(self, name)
        return Response(s.PromptSerializer(selectors.prompts_for_project(project=project).get(pk=prompt.pk)).data)


class PromptVersionListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="prompt_versions_list", tags=["prompts"], responses=s.PromptVersionSerializer(many=True), parameters=[s.VersionListQuerySerializer])
    def get(self, request, project_slug, name):
        _, prompt = _prompt(self, name)
        query = _valid(s.VersionListQuerySerializer, request.query_params)
        tag = query.get("tag")
        return self.paginated(
            selectors.prompt_versions(prompt=prompt, tag=tag), rows=selectors.prompt_version_rows_complete, numbered=None if tag else {"total": prompt.version_count}
        )

    @api_schema(
        operation_id="prompt_versions_commit",
        tags=["prompts"],
        request=s.PromptVersionCommitSerializer,
        responses={201: s.PromptVersionSerializer},
        errors=WRITE_ERRORS,
        description="Commit version n+1. Content identical to the head is refused (409).",
    )
    def post(self, request, project_slug, name):
        _, prompt = _prompt(self, name)
        data = _valid(s.PromptVersionCommitSerializer, request.data)
        parent = selectors.prompt_version_get(prompt=prompt, number=data["parent"]) if "parent" in data else None
        version = services.prompt_version_commit(
            prompt=prompt, template=data["template"], model_params=data["model_params"], message=data["message"], parent=parent, tags=data["tags"], actor=request.user
        )
        return Response(selectors.prompt_version_row_of(version), status=status.HTTP_201_CREATED)


class PromptVersionDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="prompt_versions_retrieve", tags=["prompts"], responses=s.PromptVersionSerializer)
    def get(self, request, project_slug, name, number):
        _, prompt = _prompt(self, name)
        return Response(_prompt_version_row(prompt, number))


class PromptDiffApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="prompt_versions_diff", tags=["prompts"], responses=s.DiffSerializer, parameters=[s.DiffQuerySerializer], errors=(400, 401, 403, 404))
    def get(self, request, project_slug, name):
        _, prompt = _prompt(self, name)
        query = _valid(s.DiffQuerySerializer, request.query_params)
        old = selectors.prompt_version_get(prompt=prompt, number=query["old"])
        new = selectors.prompt_version_get(prompt=prompt, number=query["new"])
        return Response(s.DiffSerializer(selectors.versions_diff(old=old, new=new)).data)


class PromptRenderApi(ProjectApiView):
    roles = {"POST": Role.VIEWER}

    @api_schema(
        operation_id="prompt_versions_render",
        tags=["prompts"],
        request=s.RenderSerializer,
        responses=s.RenderedSerializer,
        errors=(400, 401, 403, 404),
        description="Fill the version's {{ variables }}; a read, so viewers may render.",
    )
    def post(self, request, project_slug, name, number):
        _, prompt = _prompt(self, name)
        data = _valid(s.RenderSerializer, request.data)
        version = selectors.prompt_version_get(prompt=prompt, number=number)
        return Response({"text": services.prompt_render(prompt_version=version, variables=data["variables"])})


class PromptVersionTagListApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="prompt_version_tags_add", tags=["tags"], request=s.TagCreateSerializer, responses={201: s.TagSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug, name, number):
        _, prompt = _prompt(self, name)
        data = _valid(s.TagCreateSerializer, request.data)
        tag = services.tag_add(name=data["name"], prompt_version=selectors.prompt_version_get(prompt=prompt, number=number), actor=request.user)
        return Response(s.TagSerializer(tag).data, status=status.HTTP_201_CREATED)


class PromptVersionTagDetailApi(ProjectApiView):
    roles = {"DELETE": Role.EDITOR}

    @api_schema(operation_id="prompt_version_tags_remove", tags=["tags"], responses={204: None}, errors=(401, 403, 404))
    def delete(self, request, project_slug, name, number, tag):
        _, prompt = _prompt(self, name)
        version = selectors.prompt_version_get(prompt=prompt, number=number)
        found = version.tags.filter(name=tag).first()
        if found is None:
            raise NotFound(f"{version} has no tag {tag!r}.")
        services.tag_remove(tag=found, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
