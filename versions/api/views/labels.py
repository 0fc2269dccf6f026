"""Labels of prompts and models: moves (with the promotion gate's evidence), previews, history, and references resolved."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ProjectApiView
from core.errors import ValidationFailed
from versions import selectors, services
from versions.api import serializers as s
from versions.models import Role
from versions.promotion import cited_evaluation
from versions.api.views.checkpoints import _model
from versions.api.views.common import _valid
from versions.api.views.prompts import _prompt


def _evaluation(project, evaluation_id):
    if evaluation_id is None:
        return None
    evaluation = cited_evaluation(project=project, evaluation_id=evaluation_id)
    if evaluation is None:
        raise ValidationFailed(f"Evaluation {evaluation_id} not found in {project.slug}.", fields={"evaluation": ["Not found."]})
    return evaluation


def _label_moved(event):
    """The move's event as the label's history shows it, from the instance label_move made (its
    actor and versions are in hand; reading it back cost a quarter of the request), with the
    move's ``impact`` (the preview)."""
    code = status.HTTP_201_CREATED if event.action == "create" else status.HTTP_200_OK
    return Response(s.LabelMovedSerializer(event).data, status=code)


LABEL_MOVE_RESPONSES = {
    200: s.LabelMovedSerializer,
    201: OpenApiResponse(s.LabelMovedSerializer, description="The label was created."),
    409: OpenApiResponse(
        s.LessSafeErrorSerializer,
        description=(
            "Conflicts with the current state: the label already points there (code conflict), or the latest finished evaluation "
            "between the current version and the target measured the target less safe and the request did not carry "
            "acknowledge_less_safe: true (code less_safe_target, with the warning and the impact)."
        ),
    ),
}


LABEL_MOVE_DESCRIPTION = (
    "Point the label at a version: a rollback (to a version the label held before, by its history), a promotion (any other) "
    "or its creation (201). Protected labels need the project's protected role; with the promotion gate on, a promotion "
    "of a protected label must cite a passing evaluation. A move to a version the latest evaluation between the two measured "
    "less safe needs acknowledge_less_safe: true. The answer carries the move's impact (see the preview operation)."
)


LABEL_PREVIEW_DESCRIPTION = (
    "What moving the label to version `to` would do, without moving it: rollback or promotion, the latest finished "
    "evaluation between the current version and the target (attack success and failure to help of each, verdict), whether "
    "it measured the target less safe (a move then needs acknowledge_less_safe), and the promotion gate's answer for "
    "`evaluation` (else that latest evaluation)."
)


def _label_preview(request, project, owner_kind, owner, label):
    query = _valid(s.LabelMovePreviewQuerySerializer, request.query_params)
    impact = selectors.label_move_preview(
        project=project, owner_kind=owner_kind, owner=owner, label_name=label, number=query["to"], evaluation=_evaluation(project, query["evaluation"])
    )
    return Response(s.LabelMoveImpactSerializer(impact).data)


class PromptLabelListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="prompt_labels_list", tags=["labels"], responses=s.LabelSerializer(many=True))
    def get(self, request, project_slug, name):
        _, prompt = _prompt(self, name)
        return self.paginated(selectors.labels_for_owner(prompt=prompt), serializer_class=s.LabelSerializer)


class PromptLabelDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "PUT": Role.EDITOR}

    @api_schema(operation_id="prompt_labels_retrieve", tags=["labels"], responses=s.LabelSerializer)
    def get(self, request, project_slug, name, label):
        project, _ = _prompt(self, name)
        return Response(s.LabelSerializer(selectors.label_get(project=project, owner_kind="prompt", owner_name=name, name=label)).data)

    @api_schema(
        operation_id="prompt_labels_move",
        tags=["labels"],
        request=s.PromptLabelMoveSerializer,
        responses=LABEL_MOVE_RESPONSES,
        errors=WRITE_ERRORS,
        description=LABEL_MOVE_DESCRIPTION,
    )
    def put(self, request, project_slug, name, label):
        project, prompt = _prompt(self, name)
        data = _valid(s.PromptLabelMoveSerializer, request.data)
        event = services.label_move(
            name=label,
            actor=request.user,
            reason=data["reason"],
            prompt_version=selectors.prompt_version_get(prompt=prompt, number=data["version"]),
            evaluation=_evaluation(project, data["evaluation"]),
            acknowledge_less_safe=data["acknowledge_less_safe"],
        )
        return _label_moved(event)


class PromptLabelPreviewApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="prompt_labels_preview",
        tags=["labels"],
        responses=s.LabelMoveImpactSerializer,
        parameters=[s.LabelMovePreviewQuerySerializer],
        errors=(400, 401, 403, 404),
        description=LABEL_PREVIEW_DESCRIPTION,
    )
    def get(self, request, project_slug, name, label):
        project, prompt = _prompt(self, name)
        return _label_preview(request, project, "prompt", prompt, label)


class PromptLabelHistoryApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="prompt_labels_history", tags=["labels"], responses=s.LabelEventSerializer(many=True))
    def get(self, request, project_slug, name, label):
        project, _ = _prompt(self, name)
        found = selectors.label_get(project=project, owner_kind="prompt", owner_name=name, name=label)
        return self.paginated(selectors.label_events(label=found), serializer_class=s.LabelEventSerializer)


class ModelLabelListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="model_labels_list", tags=["labels"], responses=s.LabelSerializer(many=True))
    def get(self, request, project_slug, name):
        _, model = _model(self, name)
        return self.paginated(selectors.labels_for_owner(model=model), serializer_class=s.LabelSerializer)


class ModelLabelDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "PUT": Role.EDITOR}

    @api_schema(operation_id="model_labels_retrieve", tags=["labels"], responses=s.LabelSerializer)
    def get(self, request, project_slug, name, label):
        project, _ = _model(self, name)
        return Response(s.LabelSerializer(selectors.label_get(project=project, owner_kind="model", owner_name=name, name=label)).data)

    @api_schema(
        operation_id="model_labels_move",
        tags=["labels"],
        request=s.ModelLabelMoveSerializer,
        responses=LABEL_MOVE_RESPONSES,
        errors=WRITE_ERRORS,
        description=LABEL_MOVE_DESCRIPTION,
    )
    def put(self, request, project_slug, name, label):
        project, model = _model(self, name)
        data = _valid(s.ModelLabelMoveSerializer, request.data)
        event = services.label_move(
            name=label,
            actor=request.user,
            reason=data["reason"],
            checkpoint=selectors.checkpoint_get(model=model, number=data["checkpoint"]),
            evaluation=_evaluation(project, data["evaluation"]),
            acknowledge_less_safe=data["acknowledge_less_safe"],
        )
        return _label_moved(event)


class ModelLabelPreviewApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="model_labels_preview",
        tags=["labels"],
        responses=s.LabelMoveImpactSerializer,
        parameters=[s.LabelMovePreviewQuerySerializer],
        errors=(400, 401, 403, 404),
        description=LABEL_PREVIEW_DESCRIPTION,
    )
    def get(self, request, project_slug, name, label):
        project, model = _model(self, name)
        return _label_preview(request, project, "model", model, label)


class ModelLabelHistoryApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="model_labels_history", tags=["labels"], responses=s.LabelEventSerializer(many=True))
    def get(self, request, project_slug, name, label):
        project, _ = _model(self, name)
        found = selectors.label_get(project=project, owner_kind="model", owner_name=name, name=label)
        return self.paginated(selectors.label_events(label=found), serializer_class=s.LabelEventSerializer)


class RefResolveApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="refs_resolve",
        tags=["labels"],
        responses=s.ResolvedSerializer,
        parameters=[s.ResolveQuerySerializer],
        errors=(400, 401, 403, 404),
        description="Resolve name@label or name@number to a prompt version or a checkpoint.",
    )
    def get(self, request, project_slug):
        project = self.project
        query = _valid(s.ResolveQuerySerializer, request.query_params)
        target = selectors.label_resolve(project=project, ref=query["ref"], kind=query.get("kind"))
        # Built in ResolvedSerializer's shape (the schema's); serializing four plain values through
        # it cost a tenth of this request.
        if hasattr(target, "prompt_id"):
            body = {"kind": "prompt_version", "name": target.prompt.name, "number": target.number, "sha256": target.sha256}
        else:
            body = {"kind": "checkpoint", "name": target.model.name, "number": target.number, "sha256": target.sha256}
        return Response(body)
