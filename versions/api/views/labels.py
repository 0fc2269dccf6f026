"""Labels of prompts and models: moves (with the promotion gate's evidence), previews, history, and references resolved."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.response import Response

from core.api.schema import WRITE_ERRORS, api_schema, api_schema_by_view
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


@dataclass(frozen=True)
class LabelOwner:
    """What sets a prompt's labels apart from a model's in the API; everything else is shared."""

    resolve: Callable  # (view, name) -> (project, the prompt or model): NotFound when there is none
    move_serializer: type  # a move's request
    target: Callable  # (owner, the move's validated data) -> label_move's keyword naming the version


LABEL_OWNERS = {
    "prompt": LabelOwner(
        resolve=_prompt,
        move_serializer=s.PromptLabelMoveSerializer,
        target=lambda prompt, data: {"prompt_version": selectors.prompt_version_get(prompt=prompt, number=data["version"])},
    ),
    "model": LabelOwner(
        resolve=_model,
        move_serializer=s.ModelLabelMoveSerializer,
        target=lambda model, data: {"checkpoint": selectors.checkpoint_get(model=model, number=data["checkpoint"])},
    ),
}


def _label_schema(operation, *, request=None, **schema):
    """``api_schema`` of one label operation for each owner kind, as ``<kind>_labels_<operation>``;
    ``request``, if given, is a function of the kind's LabelOwner."""
    return api_schema_by_view(
        "owner_kind",
        {
            kind: api_schema(operation_id=f"{kind}_labels_{operation}", tags=["labels"], request=request(owner) if request else None, **schema)
            for kind, owner in LABEL_OWNERS.items()
        },
    )


class OwnerLabelApiView(ProjectApiView):
    # The labels of a prompt or of a model: one class for both, routed as
    # as_view(owner_kind="prompt") and as_view(owner_kind="model"); LABEL_OWNERS[owner_kind] holds
    # what differs. (Comments, not a docstring: the schema would show it as every operation's
    # description.)
    owner_kind = None

    @classmethod
    def as_view(cls, **initkwargs):
        if initkwargs.get("owner_kind") not in LABEL_OWNERS:
            raise ImproperlyConfigured(f"{cls.__name__}.as_view() needs owner_kind, one of {sorted(LABEL_OWNERS)}.")
        return super().as_view(**initkwargs)

    def get_view_name(self):
        # OPTIONS answers and the browsable API name the view as they named the two classes this
        # one replaced: "Prompt Label Detail Api", "Model Label Detail Api".
        return f"{self.owner_kind.capitalize()} {super().get_view_name()}"

    def owner(self, name):
        """The project and the prompt or model named ``name``."""
        return LABEL_OWNERS[self.owner_kind].resolve(self, name)


class LabelListApi(OwnerLabelApiView):
    roles = {"GET": Role.VIEWER}

    @_label_schema("list", responses=s.LabelSerializer(many=True))
    def get(self, request, project_slug, name):
        _, owner = self.owner(name)
        return self.paginated(selectors.labels_for_owner(**{self.owner_kind: owner}), serializer_class=s.LabelSerializer)


class LabelDetailApi(OwnerLabelApiView):
    roles = {"GET": Role.VIEWER, "PUT": Role.EDITOR}

    @_label_schema("retrieve", responses=s.LabelSerializer)
    def get(self, request, project_slug, name, label):
        project, _ = self.owner(name)
        return Response(s.LabelSerializer(selectors.label_get(project=project, owner_kind=self.owner_kind, owner_name=name, name=label)).data)

    @_label_schema(
        "move",
        request=lambda owner: owner.move_serializer,
        responses=LABEL_MOVE_RESPONSES,
        errors=WRITE_ERRORS,
        description=LABEL_MOVE_DESCRIPTION,
    )
    def put(self, request, project_slug, name, label):
        project, owner = self.owner(name)
        kind = LABEL_OWNERS[self.owner_kind]
        data = _valid(kind.move_serializer, request.data)
        target = kind.target(owner, data)  # before the evaluation: a missing version is the error reported first
        event = services.label_move(
            name=label,
            actor=request.user,
            reason=data["reason"],
            **target,
            evaluation=_evaluation(project, data["evaluation"]),
            acknowledge_less_safe=data["acknowledge_less_safe"],
        )
        return _label_moved(event)


class LabelPreviewApi(OwnerLabelApiView):
    roles = {"GET": Role.VIEWER}

    @_label_schema(
        "preview",
        responses=s.LabelMoveImpactSerializer,
        parameters=[s.LabelMovePreviewQuerySerializer],
        errors=(400, 401, 403, 404),
        description=LABEL_PREVIEW_DESCRIPTION,
    )
    def get(self, request, project_slug, name, label):
        project, owner = self.owner(name)
        query = _valid(s.LabelMovePreviewQuerySerializer, request.query_params)
        impact = selectors.label_move_preview(
            project=project,
            owner_kind=self.owner_kind,
            owner=owner,
            label_name=label,
            number=query["to"],
            evaluation=_evaluation(project, query["evaluation"]),
        )
        return Response(s.LabelMoveImpactSerializer(impact).data)


class LabelHistoryApi(OwnerLabelApiView):
    roles = {"GET": Role.VIEWER}

    @_label_schema("history", responses=s.LabelEventSerializer(many=True))
    def get(self, request, project_slug, name, label):
        project, _ = self.owner(name)
        found = selectors.label_get(project=project, owner_kind=self.owner_kind, owner_name=name, name=label)
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
