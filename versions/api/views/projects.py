"""Projects, their members and their audit trail."""

from django.contrib.auth import get_user_model
from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ApiView, ProjectApiView
from core.errors import NotFound, ValidationFailed
from versions import selectors, services
from versions.api import serializers as s
from versions.models import Role
from versions.api.views.common import _valid


class ProjectListApi(ApiView):
    @api_schema(operation_id="projects_list", tags=["projects"], responses=s.ProjectSerializer(many=True), errors=(401,))
    def get(self, request):
        return self.paginated(selectors.projects_for_user(user=request.user), serializer_class=s.ProjectSerializer)

    @api_schema(operation_id="projects_create", tags=["projects"], request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer}, errors=(400, 401, 409))
    def post(self, request):
        data = _valid(s.ProjectCreateSerializer, request.data)
        project = services.project_create(slug=data["slug"], name=data["name"], description=data["description"], creator=request.user)
        return Response(s.ProjectSerializer(project, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "PATCH": Role.ADMIN}

    @api_schema(operation_id="projects_retrieve", tags=["projects"], responses=s.ProjectSerializer)
    def get(self, request, project_slug):
        project = self.project
        return Response(s.ProjectSerializer(project, context={"request": request}).data)

    @api_schema(operation_id="projects_update", tags=["projects"], request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer, errors=WRITE_ERRORS)
    def patch(self, request, project_slug):
        project = self.project
        changes = _valid(s.ProjectUpdateSerializer, request.data)
        project = services.project_settings_update(project=project, actor=request.user, **changes)
        return Response(s.ProjectSerializer(project, context={"request": request}).data)


def _user_by_username(username):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(f"No user named {username!r}.", fields={"username": ["Unknown user."]})
    return user


def _membership(project, username):
    membership = selectors.memberships_for_project(project=project).filter(user__username=username).first()
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {project.slug}.")
    return membership


class MemberListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.ADMIN}

    @api_schema(operation_id="members_list", tags=["members"], responses=s.MemberSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.memberships_for_project(project=project), serializer_class=s.MemberSerializer)

    @api_schema(operation_id="members_add", tags=["members"], request=s.MemberAddSerializer, responses={201: s.MemberSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.MemberAddSerializer, request.data)
        user = _user_by_username(data["username"])
        services.member_add(project=project, user=user, role=data["role"], actor=request.user)
        return Response(s.MemberSerializer(_membership(project, user.username)).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(ProjectApiView):
    roles = {"PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    @api_schema(operation_id="members_update", tags=["members"], request=s.MemberRoleSerializer, responses=s.MemberSerializer, errors=WRITE_ERRORS)
    def patch(self, request, project_slug, username):
        project = self.project
        data = _valid(s.MemberRoleSerializer, request.data)
        membership = _membership(project, username)
        services.member_set(project=project, user=membership.user, role=data["role"], actor=request.user)
        return Response(s.MemberSerializer(_membership(project, username)).data)

    @api_schema(operation_id="members_remove", tags=["members"], responses={204: None}, errors=(401, 403, 404, 409))
    def delete(self, request, project_slug, username):
        project = self.project
        services.member_remove(project=project, user=_membership(project, username).user, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventListApi(ProjectApiView):
    roles = {"GET": Role.REVIEWER}

    @api_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        responses=s.AuditEventSerializer(many=True),
        description="The project's audit trail, newest first. Reviewers and admins only.",
    )
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.audit_events(project=project), serializer_class=s.AuditEventSerializer)
