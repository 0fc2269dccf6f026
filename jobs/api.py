"""REST API for runs and webhooks: thin views that check the role, call a selector or a
service and serialize. Viewers read runs, editors cancel and retry, admins manage webhooks."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.views import ProjectApiView
from jobs import selectors, services, webhooks
from jobs.logs import run_internals_visible
from jobs.serializers import (
    RunDetailSerializer,
    RunListQuerySerializer,
    RunSerializer,
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
)
from versions.models import Role


def _run_detail(request, project, run):
    full_log = run_internals_visible(project=project, user=request.user)
    return RunDetailSerializer(run, context={"full_log": full_log}).data


class RunListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="runs_list",
        parameters=[RunListQuerySerializer],
        responses=RunSerializer(many=True),
        tags=["runs"],
    )
    def get(self, request, project_slug):
        project = self.project
        query = RunListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        runs = selectors.run_list(project=project, **query.validated_data)
        return self.paginated(runs, serializer_class=RunSerializer)


class RunDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @extend_schema(operation_id="runs_retrieve", responses=RunDetailSerializer, tags=["runs"])
    def get(self, request, project_slug, run_id):
        project = self.project
        return Response(_run_detail(request, project, selectors.run_get(project=project, run_id=run_id)))


class RunCancelApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @extend_schema(operation_id="runs_cancel", request=None, responses=RunDetailSerializer, tags=["runs"])
    def post(self, request, project_slug, run_id):
        project = self.project
        run = services.run_cancel(run=selectors.run_get(project=project, run_id=run_id), actor=request.user)
        return Response(_run_detail(request, project, run))


class RunRetryApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @extend_schema(operation_id="runs_retry", request=None, responses={201: RunDetailSerializer}, tags=["runs"])
    def post(self, request, project_slug, run_id):
        project = self.project
        new_run = services.run_retry(run=selectors.run_get(project=project, run_id=run_id), actor=request.user)
        return Response(_run_detail(request, project, selectors.run_get(project=project, run_id=new_run.pk)), status=status.HTTP_201_CREATED)


class WebhookListApi(ProjectApiView):
    roles = {"GET": Role.ADMIN, "POST": Role.ADMIN}

    @extend_schema(operation_id="webhooks_list", responses=WebhookSerializer(many=True), tags=["webhooks"])
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.webhook_list(project=project).select_related("created_by"), serializer_class=WebhookSerializer)

    @extend_schema(operation_id="webhooks_create", request=WebhookCreateSerializer, responses={201: WebhookCreatedSerializer}, tags=["webhooks"])
    def post(self, request, project_slug):
        project = self.project
        data = WebhookCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhooks.webhook_create(project=project, actor=request.user, **data.validated_data)
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(ProjectApiView):
    roles = {"GET": Role.ADMIN, "PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    @extend_schema(operation_id="webhooks_retrieve", responses=WebhookSerializer, tags=["webhooks"])
    def get(self, request, project_slug, webhook_id):
        project = self.project
        return Response(WebhookSerializer(selectors.webhook_get(project=project, webhook_id=webhook_id)).data)

    @extend_schema(operation_id="webhooks_update", request=WebhookUpdateSerializer, responses=WebhookSerializer, tags=["webhooks"])
    def patch(self, request, project_slug, webhook_id):
        project = self.project
        webhook = selectors.webhook_get(project=project, webhook_id=webhook_id)
        data = WebhookUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhooks.webhook_update(webhook=webhook, actor=request.user, **data.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(operation_id="webhooks_destroy", responses={204: None}, tags=["webhooks"])
    def delete(self, request, project_slug, webhook_id):
        project = self.project
        webhooks.webhook_delete(webhook=selectors.webhook_get(project=project, webhook_id=webhook_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(ProjectApiView):
    roles = {"GET": Role.ADMIN}

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        responses=WebhookDeliverySerializer(many=True),
        tags=["webhooks"],
        parameters=[OpenApiParameter("page", int, required=False)],
    )
    def get(self, request, project_slug, webhook_id):
        project = self.project
        webhook = selectors.webhook_get(project=project, webhook_id=webhook_id)
        return self.paginated(selectors.webhook_delivery_list(webhook=webhook), serializer_class=WebhookDeliverySerializer)
