"""Registry REST API. Views are thin: scope the project by role, validate the request's shape,
call a selector or a service, serialize. Domain errors raised by services become the one error
body in core.api.errors; versions and checkpoints have no DELETE route."""

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import status
from rest_framework.response import Response

from core.api.parsers import JSONParser, MultiPartParser
from core.api.schema import WRITE_ERRORS, api_schema
from core.api.views import ApiView, ProjectApiView
from core.errors import Conflict, NotFound, TooLarge, ValidationFailed
from versions import blob_store, checkpoint_files, portable, selectors, services
from versions.api import archives, uploads
from versions.api import serializers as s
from versions.models import CheckpointKind, Role
from versions.promotion import cited_evaluation
from versions.throttling import TokenCreateThrottle


def _valid(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ---------------------------------------------------------------- tokens


class TokenListApi(ApiView):
    throttle_classes = [TokenCreateThrottle]

    @api_schema(operation_id="tokens_list", tags=["tokens"], responses=s.TokenSerializer(many=True), errors=(401,))
    def get(self, request):
        return self.paginated(selectors.tokens_for_user(user=request.user), serializer_class=s.TokenSerializer)

    @api_schema(operation_id="tokens_create", tags=["tokens"], request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer}, errors=(400, 401, 429))
    def post(self, request):
        data = _valid(s.TokenCreateSerializer, request.data)
        token, key = services.token_create(user=request.user, name=data["name"])
        token.key = key
        return Response(s.TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(ApiView):
    @api_schema(operation_id="tokens_revoke", tags=["tokens"], responses={204: None}, errors=(401, 404), description="Revoke a token: it is refused from the next request on.")
    def delete(self, request, token_id):
        services.token_revoke(token=selectors.token_get(user=request.user, token_id=token_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- projects and members


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


# ---------------------------------------------------------------- prompts


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


# ---------------------------------------------------------------- labels


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


# ---------------------------------------------------------------- models and checkpoints


def _model(view, name):
    return view.project, selectors.model_get(project=view.project, name=name)


def _checkpoint(view, name, number):
    return selectors.checkpoint_get_by_name(project=view.project, model_name=name, number=number)


def _checkpoint_row(model, number):
    """One checkpoint in the API's shape (the same rows as the list)."""
    rows = selectors.checkpoint_rows_complete(selectors.checkpoints_for_model(model=model).filter(number=number))
    if not rows:
        raise NotFound(f"{model.name} has no checkpoint {number}.")
    return rows[0]


class ModelListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="models_list", tags=["models"], responses=s.ModelSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.models_for_project(project=project), serializer_class=s.ModelSerializer)

    @api_schema(operation_id="models_create", tags=["models"], request=s.ModelCreateSerializer, responses={201: s.ModelSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.ModelCreateSerializer, request.data)
        model = services.model_create(project=project, actor=request.user, **data)
        return Response(s.ModelSerializer(selectors.models_for_project(project=project).get(pk=model.pk)).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="models_retrieve", tags=["models"], responses=s.ModelSerializer)
    def get(self, request, project_slug, name):
        project, model = _model(self, name)
        return Response(s.ModelSerializer(selectors.models_for_project(project=project).get(pk=model.pk)).data)


def _parents(project, model, refs):
    parents = []
    for ref in refs:
        owner = selectors.model_get(project=project, name=ref["model"]) if ref.get("model") else model
        parents.append((selectors.checkpoint_get(model=owner, number=ref["number"]), ref["relation"]))
    return parents


def _register_options(project, model, data):
    return {
        "architecture": data["architecture"],
        "message": data["message"],
        "metadata": data["metadata"],
        "parents": _parents(project, model, data["parents"]),
        "lineage_method": data["lineage_method"],
        "forget_dataset_sha256": data["forget_dataset_sha256"],
        "retain_dataset_sha256": data["retain_dataset_sha256"],
        "tags": data["tags"],
    }


def _uploaded_files(request, directory):
    """{relative name: local path} from a multipart request: one archive, parts named by their
    paths, or ``files`` parts with a parallel ``paths`` list."""
    uploads = request.FILES
    part_names = list(uploads.keys())
    if "archive" in part_names:
        if part_names != ["archive"] or len(uploads.getlist("archive")) != 1:
            raise ValidationFailed("Send either one archive or the checkpoint's files, not both.", fields={"archive": ["Send it alone."]})
        archive = uploads["archive"]
        path = archives.upload_spool(archive, directory, 0)
        extracted = Path(directory) / "extracted"
        extracted.mkdir()
        return archives.archive_extract(path=path, filename=archive.name, directory=extracted)
    if "paths" in request.data:
        paths, parts = request.data.getlist("paths"), uploads.getlist("files")
        if part_names != ["files"] or len(paths) != len(parts):
            raise ValidationFailed(f"paths has {len(paths)} entries for {len(parts)} 'files' parts; give one path per file part.", fields={"paths": ["One path per file."]})
        pairs = list(zip(paths, parts, strict=True))
    else:
        pairs = []
        for name, parts in uploads.lists():
            if len(parts) != 1:
                raise ValidationFailed(f"File {name!r} is given twice.", fields={name: ["Given twice."]})
            pairs.append((name, parts[0]))
    if not pairs:
        raise ValidationFailed(
            "No files: send the checkpoint's files as multipart parts named by their relative paths, or one 'archive'; register external weights with JSON (kind 'reference').",
            fields={"files": ["Required."]},
        )
    files = {}
    for index, (name, uploaded) in enumerate(pairs):
        if name in files:
            raise ValidationFailed(f"File {name!r} is given twice.", fields={"paths": ["Given twice."]})
        files[name] = archives.upload_spool(uploaded, directory, index)
    return files


CHECKPOINT_REGISTER_DESCRIPTION = (
    "Register checkpoint n+1. JSON registers a reference to external weights (kind 'reference', external_ref, "
    "external_revision) or a served model (kind 'endpoint', endpoint {profile, model, parameters}: a profile the operator "
    "defines, never a URL or a key). multipart/form-data uploads stored weights: one 'archive' (.tar, .tar.gz, .tgz, .zip), or the files, "
    "each part named by its relative path (or parts named 'files' with a parallel 'paths' list); 'metadata' and 'parents' "
    "are JSON strings there. Weights only as safetensors; pickles, links, '..' and archive bombs are refused and nothing is stored."
)


class CheckpointListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}
    parser_classes = [JSONParser, uploads.HashingMultiPartParser]

    @api_schema(operation_id="checkpoints_list", tags=["checkpoints"], responses=s.CheckpointSerializer(many=True), parameters=[s.VersionListQuerySerializer])
    def get(self, request, project_slug, name):
        _, model = _model(self, name)
        query = _valid(s.VersionListQuerySerializer, request.query_params)
        tag = query.get("tag")
        return self.paginated(
            selectors.checkpoints_for_model(model=model, tag=tag), rows=selectors.checkpoint_rows_complete, numbered=None if tag else {"total": model.checkpoint_count}
        )

    @api_schema(
        operation_id="checkpoints_register",
        tags=["checkpoints"],
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="CheckpointJsonRegister",
                serializers={"reference": s.CheckpointReferenceSerializer, "endpoint": s.CheckpointEndpointSerializer},
                resource_type_field_name="kind",
            ),
            "multipart/form-data": s.CheckpointUploadSerializer,
        },
        responses={201: s.CheckpointSerializer},
        errors=(*WRITE_ERRORS, 413, 415),
        description=CHECKPOINT_REGISTER_DESCRIPTION,
    )
    def post(self, request, project_slug, name):
        project, model = _model(self, name)
        if request.content_type.startswith("multipart/form-data"):
            data = _valid(s.CheckpointUploadSerializer, request.data)
            # In the spool folder: extracted members are then on the store's filesystem and move in.
            with tempfile.TemporaryDirectory(prefix="lethe-upload-", dir=blob_store.spool_directory()) as directory:
                files = _uploaded_files(request, directory)
                checkpoint = services.checkpoint_register(
                    model=model,
                    kind=data.get("kind") or checkpoint_files.infer_kind(files),
                    files=files,
                    actor=request.user,
                    **_register_options(project, model, data),
                )
        elif isinstance(request.data, dict) and request.data.get("kind") == CheckpointKind.ENDPOINT:
            data = _valid(s.CheckpointEndpointSerializer, request.data)
            checkpoint = services.checkpoint_register(
                model=model,
                kind=CheckpointKind.ENDPOINT,
                endpoint=dict(data["endpoint"]),
                actor=request.user,
                **_register_options(project, model, data),
            )
        else:
            data = _valid(s.CheckpointReferenceSerializer, request.data)
            checkpoint = services.checkpoint_register(
                model=model,
                kind=CheckpointKind.REFERENCE,
                external_ref=data["external_ref"],
                external_revision=data["external_revision"],
                actor=request.user,
                **_register_options(project, model, data),
            )
        return Response(selectors.checkpoint_row_of(checkpoint), status=status.HTTP_201_CREATED)


class CheckpointDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="checkpoints_retrieve", tags=["checkpoints"], responses=s.CheckpointSerializer)
    def get(self, request, project_slug, name, number):
        _, model = _model(self, name)
        return Response(_checkpoint_row(model, number))


class CheckpointFileListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="checkpoint_files_list", tags=["checkpoints"], responses=s.CheckpointFileSerializer(many=True))
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        return self.paginated(selectors.checkpoint_files(checkpoint=checkpoint), serializer_class=s.CheckpointFileSerializer)


class CheckpointDownloadApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_download",
        tags=["checkpoints"],
        responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY, description="A tar of the checkpoint's files.")},
        errors=(401, 403, 404, 409),
        description="Stream the checkpoint's files as a tar, each blob verified against its sha256 on the way out. "
        "Extract it and load the folder with from_pretrained. An adapter's adapter_config.json names its base portably "
        "(the chain's hub id and revision, else the base as model@number) and lethe-manifest.json lists the base and the "
        "adapters to apply on it in order, this one last.",
    )
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        if checkpoint.kind == CheckpointKind.REFERENCE:
            raise Conflict(f"{checkpoint} is a reference to external weights ({checkpoint.external_ref}); it has no stored files.")
        files = [(item.path, item.blob) for item in selectors.checkpoint_files(checkpoint=checkpoint)]
        files = portable.download_files(checkpoint=checkpoint, files=files)
        length, chunks = archives.checkpoint_tar(files=files, mtime=int(checkpoint.created_at.timestamp()))
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = f'attachment; filename="{checkpoint.model.name}-{checkpoint.number}.tar"'
        response["X-Lethe-Checkpoint-Sha256"] = checkpoint.sha256
        return response


class CheckpointLineageApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(
        operation_id="checkpoints_lineage",
        tags=["checkpoints"],
        responses=s.LineageSerializer,
        parameters=[s.LineageQuerySerializer],
        errors=(400, 401, 403, 404),
        description="Ancestors and descendants, nearest first, up to depth= generations each way (default 100; one "
        "recursive query each). ancestors_truncated / descendants_truncated say whether deeper ones exist: ask again "
        "with a larger depth. method= and dataset= filter the descendants.",
    )
    def get(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        query = _valid(s.LineageQuerySerializer, request.query_params)
        # Plain rows in the LineageSerializer's shape: at depth thousands, one serializer object
        # per node costs more than the recursive statements themselves.
        ancestors, descendants, ancestors_truncated, descendants_truncated = selectors.lineage_nodes(
            checkpoint=checkpoint, method=query.get("method"), dataset_sha256=query.get("dataset"), depth=query["depth"]
        )
        return Response(
            {
                "model": checkpoint.model.name,
                "number": checkpoint.number,
                "depth": query["depth"],
                "ancestors": ancestors,
                "ancestors_truncated": ancestors_truncated,
                "descendants": descendants,
                "descendants_truncated": descendants_truncated,
            }
        )


class CheckpointTagListApi(ProjectApiView):
    roles = {"POST": Role.EDITOR}

    @api_schema(operation_id="checkpoint_tags_add", tags=["tags"], request=s.TagCreateSerializer, responses={201: s.TagSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug, name, number):
        checkpoint = _checkpoint(self, name, number)
        data = _valid(s.TagCreateSerializer, request.data)
        tag = services.tag_add(name=data["name"], checkpoint=checkpoint, actor=request.user)
        return Response(s.TagSerializer(tag).data, status=status.HTTP_201_CREATED)


class CheckpointTagDetailApi(ProjectApiView):
    roles = {"DELETE": Role.EDITOR}

    @api_schema(operation_id="checkpoint_tags_remove", tags=["tags"], responses={204: None}, errors=(401, 403, 404))
    def delete(self, request, project_slug, name, number, tag):
        checkpoint = _checkpoint(self, name, number)
        found = checkpoint.tags.filter(name=tag).first()
        if found is None:
            raise NotFound(f"{checkpoint} has no tag {tag!r}.")
        services.tag_remove(tag=found, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- datasets


def _dataset(view, name):
    return selectors.dataset_get(project=view.project, name=name)


class DatasetListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}

    @api_schema(operation_id="datasets_list", tags=["datasets"], responses=s.DatasetSerializer(many=True))
    def get(self, request, project_slug):
        project = self.project
        return self.paginated(selectors.datasets_for_project(project=project), serializer_class=s.DatasetSerializer)

    @api_schema(operation_id="datasets_create", tags=["datasets"], request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer}, errors=WRITE_ERRORS)
    def post(self, request, project_slug):
        project = self.project
        data = _valid(s.DatasetCreateSerializer, request.data)
        dataset = services.dataset_create(project=project, actor=request.user, **data)
        return Response(s.DatasetSerializer(selectors.dataset_get(project=project, name=dataset.name)).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="datasets_retrieve", tags=["datasets"], responses=s.DatasetSerializer)
    def get(self, request, project_slug, name):
        return Response(s.DatasetSerializer(_dataset(self, name)).data)


class DatasetVersionListApi(ProjectApiView):
    roles = {"GET": Role.VIEWER, "POST": Role.EDITOR}
    parser_classes = [JSONParser, MultiPartParser]

    @api_schema(operation_id="dataset_versions_list", tags=["datasets"], responses=s.DatasetVersionSerializer(many=True))
    def get(self, request, project_slug, name):
        dataset = _dataset(self, name)
        return self.paginated(selectors.dataset_versions(dataset=dataset), serializer_class=s.DatasetVersionSerializer)

    @api_schema(
        operation_id="dataset_versions_create",
        tags=["datasets"],
        request={"application/json": s.DatasetVersionCreateSerializer, "multipart/form-data": s.DatasetVersionCreateSerializer},
        responses={201: s.DatasetVersionSerializer},
        errors=(*WRITE_ERRORS, 413, 415),
        description="A new immutable, hashed version: JSON rows, or a JSONL/CSV file of prompt/response rows (multipart 'file'). Errors name the line; nothing is half-imported.",
    )
    def post(self, request, project_slug, name):
        dataset = _dataset(self, name)
        data = _valid(s.DatasetVersionCreateSerializer, request.data)
        if "rows" in data:
            version = services.dataset_version_create(dataset=dataset, rows=data["rows"], actor=request.user, message=data["message"])
        else:
            upload = data["file"]
            # The file is parsed in memory, so it is held to the in-memory request body limit.
            if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                raise TooLarge(
                    f"{upload.name}: {upload.size} bytes is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes for a dataset file (LETHE_MAX_REQUEST_BODY_BYTES)."
                )
            fmt = data.get("format") or _table_format(upload.name)
            version = services.dataset_version_import(
                dataset=dataset, data=upload.read(), fmt=fmt, actor=request.user, message=data["message"], max_line_bytes=settings.LETHE_MAX_IMPORT_LINE_BYTES
            )
        return Response(s.DatasetVersionSerializer(selectors.dataset_version_get(dataset=dataset, number=version.number)).data, status=status.HTTP_201_CREATED)


def _table_format(filename):
    lowered = (filename or "").lower()
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    raise ValidationFailed(f"Cannot tell the format of {filename!r}: name it .jsonl or .csv, or give format=jsonl|csv.", fields={"format": ["Required for this file name."]})


class DatasetVersionDetailApi(ProjectApiView):
    roles = {"GET": Role.VIEWER}

    @api_schema(operation_id="dataset_versions_retrieve", tags=["datasets"], responses=s.DatasetVersionSerializer)
    def get(self, request, project_slug, name, number):
        dataset = _dataset(self, name)
        return Response(s.DatasetVersionSerializer(selectors.dataset_version_get(dataset=dataset, number=number)).data)


class DatasetVersionRowListApi(ProjectApiView):
    roles = {"GET": Role.REVIEWER}

    @api_schema(
        operation_id="dataset_versions_rows",
        tags=["datasets"],
        responses=s.DatasetRowSerializer(many=True),
        description="The rows. Forget sets hold harmful completions: reviewers and admins only, and every read is audited.",
    )
    def get(self, request, project_slug, name, number):
        dataset = _dataset(self, name)
        version = selectors.dataset_version_get(dataset=dataset, number=number)
        services.hazard_read_record(
            project=dataset.project, actor=request.user, object_type="dataset_version", object_id=version.pk, data={"dataset": dataset.name, "version": version.number}
        )
        return self.paginated(selectors.dataset_version_rows(dataset_version=version), serializer_class=s.DatasetRowSerializer)
