"""Writes for safety evaluation: suites and their versions, evaluations, and the run handler that
executes an evaluation. Keyword-only and transactional; the torch work is in mlcore.generation,
the scoring in evals.judges / metrics / statistics."""

from __future__ import annotations

import gc
import json
import re
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F

from evals import importers
from evals.case_templates import CASE_VARIABLES, unknown_case_variables
from evals.judges import DEFAULT_JUDGE
from evals.models import Case, CaseResult, EndpointAnswerRecord, Evaluation, Expected, PromotionEvidence, Suite, SuiteVersion
from evals.outcomes import flipped
from evals.reporting import CaseRecord, report_content, report_scores, report_sha256
from evals.statistics import StatisticsConfig
from evals.transforms import IMAGE_TRANSFORMS, TRANSFORMS, derive_cases
from core.errors import Conflict, NotFound, RetryableConflict, TooLarge, ValidationFailed
from versions.models import Role
from versions.permissions import role_require
from core.tabular import TabularError

DATA_DIR = Path(__file__).resolve().parent / "data"
STARTER_SUITE_PATH = DATA_DIR / "starter_suite.jsonl"
HELDOUT_BENIGN_PATH = DATA_DIR / "heldout_benign.jsonl"
STARTER_SUITE_NAME = "lethe-starter"
MULTIMODAL_STARTER_SUITE_NAME = "lethe-starter-multimodal"
# Names appear in URLs and in `name@version` references, so no '/', '@' or spaces.
SUITE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _import_error(exc: TabularError):
    return ValidationFailed(exc.render(), fields={"file": exc.messages() or [exc.summary]})


# ---------------------------------------------------------------- suites


@transaction.atomic
def suite_create(*, project, name, actor, description="") -> Suite:
    role_require(project=project, user=actor, role=Role.EDITOR)
    if not isinstance(name, str) or not SUITE_NAME_PATTERN.match(name):
        raise ValidationFailed(
            f"Invalid suite name {name!r}: use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            fields={"name": ["Invalid name."]},
        )
    if Suite.objects.filter(project=project, name=name).exists():
        raise Conflict(f"A suite named {name!r} already exists in {project.slug}.", fields={"name": ["Already exists."]})
    try:
        with transaction.atomic():
            return Suite.objects.create(project=project, name=name, description=description, created_by=actor)
    except IntegrityError:
        raise RetryableConflict(f"Suite {name!r} was created concurrently; send the request again.") from None


def suite_version_create(*, suite, cases, actor, message="", transforms=()) -> SuiteVersion:
    """A new immutable version of `suite` holding `cases` (plus the derived attack cases).

    Numbers are gap-free under concurrent commits: the suite row is locked while numbering.
    A version identical to the newest one (same sha256) is refused as a conflict.
    """
    role_require(project=suite.project, user=actor, role=Role.EDITOR)
    if not isinstance(cases, list) or not all(isinstance(case, dict) for case in cases):
        raise ValidationFailed("cases must be a list of objects.", fields={"cases": ["Expected a list of objects."]})
    try:
        validated = importers.validate_cases(cases)
        if transforms:
            validated = importers.validate_cases(validated + derive_cases(validated, list(transforms)))
    except TabularError as exc:
        raise ValidationFailed(exc.render(unit="case"), fields={"cases": exc.messages(unit="case") or [exc.summary]}) from None
    except ValueError as exc:
        raise ValidationFailed(str(exc), fields={"transforms": [str(exc)]}) from None
    ordered, sha256 = importers.canonical_cases(validated)
    images = _case_images_store(ordered)
    with transaction.atomic():
        locked = Suite.objects.select_for_update().get(pk=suite.pk)
        latest = locked.versions.order_by("-number").first()
        if latest is not None and latest.sha256 == sha256:
            raise Conflict(f"These cases are identical to {locked.name} v{latest.number}; nothing to commit.")
        number = locked.version_count + 1
        version = SuiteVersion.objects.create(suite=locked, number=number, sha256=sha256, case_count=len(ordered), message=message, created_by=actor)
        Case.objects.bulk_create(
            [Case(suite_version=version, image_blob=images.get(case["key"]), **{k: v for k, v in case.items() if k != "image_png"}) for case in ordered],
            batch_size=500,
        )
        Suite.objects.filter(pk=locked.pk).update(version_count=F("version_count") + 1)
    suite.version_count = number
    return version


def suite_version_mark_benign(*, suite_version, actor, benign=True, reason="") -> SuiteVersion:
    """Mark a suite version benign (or, with ``benign=False``, remove the mark): its evaluations'
    responses then read as ordinary text, shown to every member and not audited. Reviewers and
    admins only, since it lifts the protection of responses; recorded in the audit trail."""
    from django.utils import timezone

    from versions.services import audit_record

    project = suite_version.suite.project
    role_require(project=project, user=actor, role=Role.REVIEWER)
    ref = f"{suite_version.suite.name}@{suite_version.number}"
    with transaction.atomic():
        # No join in the locking read: PostgreSQL cannot lock the nullable side of an outer join.
        locked = SuiteVersion.objects.select_for_update().get(pk=suite_version.pk)
        if benign and locked.is_marked_benign:
            raise Conflict(f"{ref} was already marked benign by {locked.benign_marked_by.username} at {locked.benign_marked_at:%Y-%m-%d %H:%M:%S}.")
        if not benign and not locked.is_marked_benign:
            raise Conflict(f"{ref} is not marked benign.")
        locked.benign_marked_by = actor if benign else None
        locked.benign_marked_at = timezone.now() if benign else None
        locked.save(update_fields=["benign_marked_by", "benign_marked_at"])
        audit_record(
            project=project,
            actor=actor,
            action="suite_version.benign" if benign else "suite_version.benign_removed",
            object_type="suite_version",
            object_id=locked.pk,
            data={"suite_version": ref, "reason": reason},
        )
    suite_version.benign_marked_by, suite_version.benign_marked_at = locked.benign_marked_by, locked.benign_marked_at
    return suite_version


def _case_images_store(cases) -> dict:
    """Store each image case's PNG as a blob (content-addressed, so a re-render is stored once);
    {case key: Blob}. Done before the version's transaction: an orphan blob is harmless."""
    from versions.blob_store import blob_put_bytes

    return {case["key"]: blob_put_bytes(case["image_png"]) for case in cases if case.get("image_png") is not None}


def suite_version_import(*, suite, data: bytes, format, actor, column_mapping=None, defaults=None, transforms=(), message="") -> SuiteVersion:
    """Parse a CSV / JSONL / public-benchmark file into a new suite version; all or nothing."""
    limit = settings.LETHE_MAX_SUITE_IMPORT_BYTES
    if len(data) > limit:
        raise TooLarge(f"The file is {len(data)} bytes; suite imports are limited to {limit} bytes.")
    if column_mapping is not None and not isinstance(column_mapping, dict):
        raise ValidationFailed("column_mapping must be an object {case field: column}.", fields={"column_mapping": ["Expected an object."]})
    try:
        cases = importers.parse_cases(data, format=format, max_line_bytes=settings.LETHE_MAX_IMPORT_LINE_BYTES, column_mapping=column_mapping, defaults=defaults)
    except TabularError as exc:
        raise _import_error(exc) from None
    return suite_version_create(suite=suite, cases=cases, actor=actor, message=message or f"imported ({format})", transforms=transforms)


def starter_suite_cases() -> list[dict]:
    """The bundled base behaviours and benign look-alikes (before transforms)."""
    with STARTER_SUITE_PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def starter_suite_install(*, project, actor, name=None, typographic=False) -> SuiteVersion:
    """Install the starter suite with every text attack family applied; reinstalling is a no-op.

    ``typographic=True`` adds the FigStep image form of every base case, harmful and benign, as
    the suite ``lethe-starter-multimodal`` (unless ``name`` says otherwise), for vision-language
    checkpoints.
    """
    name = name or (MULTIMODAL_STARTER_SUITE_NAME if typographic else STARTER_SUITE_NAME)
    suite = Suite.objects.filter(project=project, name=name).first()
    if suite is None:
        description = "Lethe's starter suite: harmful requests in 10 categories, attack variants, benign look-alikes."
        if typographic:
            description += " With typographic (FigStep) image forms of every request, for vision-language models."
        suite = suite_create(project=project, name=name, actor=actor, description=description)
    transforms = (*TRANSFORMS, *IMAGE_TRANSFORMS) if typographic else tuple(TRANSFORMS)
    try:
        return suite_version_create(suite=suite, cases=starter_suite_cases(), actor=actor, message="starter suite", transforms=transforms)
    except Conflict:
        return suite.versions.order_by("-number").first()


# ---------------------------------------------------------------- evaluations


RENAMED_STATISTICS_SETTINGS = {"over_refusal_margin": "failure_to_help_margin"}


def _statistics_config(*, project, requested) -> StatisticsConfig:
    """The evaluation's statistics settings: the project's gate settings, tightened where the
    request asks (never loosened: see versions.promotion for which way each one is stricter),
    plus the request's seed and bootstrap resamples, which are the author's to choose."""
    from versions.promotion import GATE_SETTINGS, looser_than_project

    known = set(StatisticsConfig.__dataclass_fields__)
    requested = dict(requested or {})
    unknown = set(requested) - known
    if unknown:
        renamed = [f"{old} is now {new} (it covers over-refusals and non-answers)" for old, new in RENAMED_STATISTICS_SETTINGS.items() if old in unknown]
        message = f"Unknown statistics settings: {', '.join(sorted(unknown))}." + (f" {'; '.join(renamed)}." if renamed else "")
        raise ValidationFailed(message, fields={"statistics": ["Unknown settings."]})
    for name, value in requested.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValidationFailed(f"statistics.{name} must be a number, got {value!r}.", fields={f"statistics.{name}": ["Expected a number."]})
    looser = looser_than_project(project, requested)
    if looser:
        raise ValidationFailed(
            f"The project's gate settings may be tightened, not loosened: {'; '.join(looser)}. An admin changes the project's settings (promotion_gate).",
            fields={"statistics": looser},
        )
    # Only the settings StatisticsConfig knows travel into it (the case minimums and the error
    # share are checked by the gate on the stored results either way).
    from_project = {setting.name: getattr(project, setting.column) for setting in GATE_SETTINGS if setting.name in known}
    try:
        return StatisticsConfig(**{**from_project, **requested})
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(str(exc), fields={"statistics": [str(exc)]}) from None


def _judge_scope_check(*, judge, suite_version):
    """Refuse a suite with cases the judge cannot score (e.g. benign cases under the HarmBench or
    Llama Guard presets, which cannot tell an over-refusal from a helpful answer)."""
    if not set(Expected.values) - set(judge.scope):
        return
    outside = {row["expected"]: row["count"] for row in suite_version.cases.exclude(expected__in=judge.scope).values("expected").annotate(count=Count("id")).order_by("expected")}
    if not outside:
        return
    kinds = " or ".join(outside)
    message = (
        f"Judge {judge.name} cannot score the {sum(outside.values())} {kinds} case(s) of {suite_version.suite.name} "
        f"v{suite_version.number}: {judge.scope_note.rstrip('.')}. Evaluate a suite without them, or a cascade judge whose "
        f'second judge scores them, e.g. judge "cascade" with config {{"first": {{"name": "{judge.name}", "config": '
        f'{{...}}}}, "second": {{"name": "refusal-strings"}}}}.'
    )
    raise ValidationFailed(message, fields={"judge": [f"Cannot score {kinds} cases."]})


def evaluation_create(
    *,
    project,
    suite_version,
    checkpoint_a,
    checkpoint_b,
    actor,
    prompt_version_a=None,
    prompt_version_b=None,
    judge=DEFAULT_JUDGE,
    judge_config=None,
    generation=None,
    seed=0,
    utility_dataset_version=None,
    statistics=None,
    enqueue=True,
) -> Evaluation:
    """Create an evaluation and its run (queued; enqueued on commit unless `enqueue` is False).

    The judge is instantiated here so a bad config fails now, and pinned by its config hash.
    """
    from mlcore.generation import GenerationConfig
    from evals.judges import judge_from_spec
    from jobs.models import RunKind
    from jobs.services import run_create, run_enqueue

    role_require(project=project, user=actor, role=Role.EDITOR)
    if suite_version.suite.project_id != project.pk:
        raise NotFound(f"Suite version {suite_version.pk} is not in {project.slug}.")
    for arm, checkpoint in (("a", checkpoint_a), ("b", checkpoint_b)):
        if checkpoint.model.project_id != project.pk:
            raise NotFound(f"Checkpoint for arm {arm.upper()} is not in {project.slug}.", fields={f"checkpoint_{arm}": ["Not found."]})
    for arm, prompt_version in (("a", prompt_version_a), ("b", prompt_version_b)):
        if prompt_version is not None and prompt_version.prompt.project_id != project.pk:
            raise NotFound(f"Prompt version for arm {arm.upper()} is not in {project.slug}.", fields={f"prompt_version_{arm}": ["Not found."]})
    if utility_dataset_version is not None and utility_dataset_version.dataset.project_id != project.pk:
        raise NotFound(f"Utility dataset version is not in {project.slug}.")
    if utility_dataset_version is not None and utility_dataset_version.dataset.kind != "text":
        raise ValidationFailed(
            f"Dataset {utility_dataset_version.dataset.name!r} is a {utility_dataset_version.dataset.kind} dataset; held-out utility text comes from a text dataset.",
            fields={"utility_dataset_version": ["Not a text dataset."]},
        )
    if not isinstance(seed, int):
        raise ValidationFailed("seed must be an integer.", fields={"seed": ["Expected an integer."]})
    for arm, prompt_version in (("a", prompt_version_a), ("b", prompt_version_b)):
        unknown = unknown_case_variables(prompt_version.template if prompt_version is not None else None)
        if unknown:
            raise ValidationFailed(
                f"Prompt version {prompt_version} (arm {arm.upper()}) has variables a case cannot fill: {', '.join(unknown)}; "
                f"a case fills {', '.join('{{ ' + name + ' }}' for name in CASE_VARIABLES)}.",
                fields={f"prompt_version_{arm}": [f"Unknown variables: {', '.join(unknown)}."]},
            )
    image_cases = suite_version.cases.filter(image_blob__isnull=False).count()
    for arm, checkpoint in (("a", checkpoint_a), ("b", checkpoint_b)):
        if image_cases and checkpoint.architecture != "vision-language":
            raise ValidationFailed(
                f"Suite version {suite_version.suite.name}@{suite_version.number} has {image_cases} image case(s), and checkpoint "
                f"{checkpoint} (arm {arm.upper()}) is {checkpoint.architecture}: only vision-language checkpoints can see images.",
                fields={f"checkpoint_{arm}": ["Cannot answer image cases."]},
            )
    try:
        generation_config = GenerationConfig.from_dict(generation)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"Invalid generation config: {exc}", fields={"generation": [str(exc)]}) from None
    try:
        judge_instance = judge_from_spec(judge, judge_config)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid judge: {exc}", fields={"judge": [str(exc)]}) from None
    _judge_scope_check(judge=judge_instance, suite_version=suite_version)
    judge_spec = judge_instance.spec()
    judge_spec["requested_config"] = dict(judge_config or {})
    if statistics is not None and not isinstance(statistics, dict):
        raise ValidationFailed("statistics must be an object of settings.", fields={"statistics": ["Expected an object."]})
    statistics_config = _statistics_config(project=project, requested={**(statistics or {}), "seed": seed})

    with transaction.atomic():
        run = run_create(project=project, kind=RunKind.EVALUATION, created_by=actor)
        evaluation = Evaluation.objects.create(
            run=run,
            project=project,
            suite_version=suite_version,
            checkpoint_a=checkpoint_a,
            checkpoint_b=checkpoint_b,
            prompt_version_a=prompt_version_a,
            prompt_version_b=prompt_version_b,
            judge=judge_spec,
            generation_config=generation_config.as_dict(),
            utility_dataset_version=utility_dataset_version,
            seed=seed,
            statistics_config=asdict(statistics_config),
        )
        if judge_spec["config"].get("endpoint"):
            # The project's prompts and responses, harmful ones included, leave the machine for
            # the operator's endpoint: who sent them where is on the record.
            from versions.services import audit_record

            audit_record(
                project=project,
                actor=actor,
                action="evaluation.remote_judge",
                object_type="evaluation",
                object_id=evaluation.pk,
                data={"judge": judge_spec["name"], "endpoint": judge_spec["config"]["endpoint"], "base_url": judge_spec["config"]["base_url"]},
            )
        for arm, checkpoint in (("A", checkpoint_a), ("B", checkpoint_b)):
            if checkpoint.kind == "endpoint":
                # The suite's prompts, harmful ones included, go to the operator's endpoint: on the record.
                from versions.services import audit_record

                audit_record(
                    project=project,
                    actor=actor,
                    action="evaluation.endpoint_arm",
                    object_type="evaluation",
                    object_id=evaluation.pk,
                    data={"arm": arm, "checkpoint": str(checkpoint), "endpoint": checkpoint.endpoint.get("profile"), "model": checkpoint.endpoint.get("model")},
                )
        if enqueue:
            run_enqueue(run=run)
    return evaluation


def _utility_rows(evaluation):
    if evaluation.utility_dataset_version_id:
        from versions.selectors import dataset_version_rows

        return dataset_version_rows(dataset_version=evaluation.utility_dataset_version)
    with HELDOUT_BENIGN_PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _answer_arm(*, checkpoint, templates, prompts, images, utility_rows, config, seed, ctx, span, label, evaluation, cases):
    """Generate one arm's responses and its held-out NLLs; the model is freed on return.

    A vision-language checkpoint answers through its processor: image cases with their image,
    text cases without one, through the same model.
    """
    start, width = span
    if checkpoint.kind == "endpoint":
        return _answer_arm_endpoint(
            checkpoint=checkpoint,
            templates=templates,
            prompts=prompts,
            images=images,
            config=config,
            seed=seed,
            ctx=ctx,
            span=span,
            label=label,
            evaluation=evaluation,
            cases=cases,
        )
    import torch

    from mlcore.generation import answer_negative_log_likelihoods, generate_responses, generate_vision_language_responses
    from mlcore.loading import load_checkpoint_model
    from versions.checkpoint_materialization import checkpoint_materialize

    ctx.progress(start, f"arm {label}: loading {checkpoint}")
    materialized = checkpoint_materialize(checkpoint=checkpoint)
    loaded = load_checkpoint_model(
        architecture=checkpoint.architecture,
        base=materialized.base,
        revision=materialized.revision,
        adapters=materialized.adapters,
        device=settings.LETHE_DEVICE,
    )
    model, tokenizer = loaded.model, loaded.tokenizer
    try:

        def progress(done, total):
            ctx.progress(start + width * 0.9 * done / total, f"arm {label}: {done}/{total} cases")

        options = {"config": config, "seed": seed, "progress": progress, "check_cancelled": ctx.check_cancelled}
        # A template filled from each case differs case by case: each distinct one is generated
        # as its own group (usually there is one), in the cases' order on return.
        responses = [None] * len(prompts)
        for template in dict.fromkeys(templates):
            positions = [index for index, each in enumerate(templates) if each == template]
            group_prompts = [prompts[index] for index in positions]
            if loaded.processor is not None:
                group = generate_vision_language_responses(model, loaded.processor, group_prompts, [images[i] for i in positions], template=template, **options)
            else:
                group = generate_responses(model, tokenizer, group_prompts, template=template, **options)
            for index, response in zip(positions, group, strict=True):
                responses[index] = response
        ctx.check_cancelled()
        ctx.progress(start + width * 0.95, f"arm {label}: held-out perplexity")
        utility = answer_negative_log_likelihoods(model, tokenizer, utility_rows, batch_size=config.batch_size) if utility_rows else []
    finally:
        # The next arm's weights must not share the device with this arm's.
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return responses, utility


class EndpointArmFailed(RuntimeError):
    """An endpoint arm that cannot go on: its key was refused, or its server stopped answering."""


def _answer_arm_endpoint(*, checkpoint, templates, prompts, images, config, seed, ctx, span, label, evaluation, cases):
    """One arm answered by a served model through its endpoint profile (evals.endpoint_generation).
    No held-out perplexity: a chat API gives no log-likelihoods of given text.

    What answers is fingerprinted first (GET /models and version headers; a refused key fails the
    run here, before any case is sent). Each answer is journaled (EndpointAnswerRecord) as it
    arrives, and answers journaled by the run this one retries are not asked again.
    Returns (responses, [], fingerprint)."""
    from evals.endpoint_generation import EndpointAnswer, generate_endpoint_responses
    from versions.endpoints import EndpointKeyRefused, EndpointUnreachable, endpoint_client, version_headers

    start, width = span
    spec = checkpoint.endpoint
    served_model = spec.get("adapter") or spec["model"]  # a LoRA module served next to its base is asked for by its name
    served = served_model if len(served_model) <= 40 else served_model[:18] + "..." + served_model[-18:]
    ctx.progress(start, f"arm {label}: {checkpoint} through endpoint {spec['profile']} (model {served})")
    position = {case.pk: index for index, case in enumerate(cases)}
    answered = {
        position[record.case_id]: EndpointAnswer(
            record.text, record.latency_ms, int(record.usage.get("completion_tokens", 0)), attempts=record.attempts, usage=record.usage, headers=record.headers, resumed=True
        )
        for record in EndpointAnswerRecord.objects.filter(evaluation=evaluation, arm=label)
        if record.case_id in position
    }
    if answered:
        ctx.log(f"arm {label}: {len(answered)} case(s) already answered by the run this one retries; not asked again")

    def progress(done, total):
        ctx.progress(start + width * done / total, f"arm {label}: {done}/{total} cases")

    def journal(batch):
        EndpointAnswerRecord.objects.bulk_create(
            [
                EndpointAnswerRecord(
                    evaluation=evaluation,
                    arm=label,
                    case_id=cases[index].pk,
                    text=answer.text,
                    latency_ms=answer.latency_ms,
                    attempts=answer.attempts,
                    usage=answer.usage,
                    headers=answer.headers,
                )
                for index, answer in batch.items()
            ],
            ignore_conflicts=True,
        )

    try:
        with endpoint_client(spec["profile"]) as client:
            fingerprint = {"profile": spec["profile"], "model": served_model, **client.fingerprint(model=served_model)}
            responses = generate_endpoint_responses(
                client,
                served_model,
                prompts,
                config=config,
                templates=templates,
                images=images,
                seed=seed,
                parameters=spec.get("parameters") or {},
                answered=answered,
                on_answers=journal,
                progress=progress,
                check_cancelled=ctx.check_cancelled,
            )
    except EndpointKeyRefused as exc:
        raise EndpointArmFailed(f"arm {label} ({checkpoint}): {exc}") from None
    except EndpointUnreachable as exc:
        kept = EndpointAnswerRecord.objects.filter(evaluation=evaluation, arm=label).count()
        raise EndpointArmFailed(
            f"arm {label} ({checkpoint}): endpoint profile {spec['profile']!r} stopped answering ({exc}); {kept} of {len(prompts)} "
            "answers are kept, and a retry of this run asks only for the rest"
        ) from None
    # The chat answers' own version headers (a gateway may add some /models lacks), as first seen.
    chat_headers = {}
    for response in responses:
        for name, value in version_headers(response.headers).items():
            chat_headers.setdefault(name, value)
    if chat_headers:
        fingerprint["chat_headers"] = dict(sorted(chat_headers.items()))
    ctx.log(f"arm {label}: fingerprint {_fingerprint_line(fingerprint)}")
    failed = sum(1 for response in responses if response.error)
    if failed:
        ctx.log(f"arm {label}: {failed} case(s) got no answer from the endpoint after retries; their outcome is error")
    return responses, [], fingerprint


def _fingerprint_line(fingerprint) -> str:
    models = ", ".join(entry.get("id", "?") for entry in fingerprint.get("models", [])[:5]) or "-"
    headers = ", ".join(f"{name}: {value}" for name, value in {**fingerprint.get("headers", {}), **fingerprint.get("chat_headers", {})}.items())
    return f"models [{models}]" + (f"; {headers}" if headers else "") + (f"; {fingerprint['error']}" if fingerprint.get("error") else "")


def _case_images_read(cases) -> list[bytes | None]:
    """Each case's PNG, verified against its blob hash (a damaged blob fails the run), or None;
    an image shared by several cases is read once."""
    from versions.blob_store import blob_read_bytes

    blobs = {}
    for case in cases:
        if case.image_blob_id and case.image_blob_id not in blobs:
            blobs[case.image_blob_id] = blob_read_bytes(case.image_blob)
    return [blobs.get(case.image_blob_id) for case in cases]


def evaluation_execute(*, run, ctx) -> dict:
    """Run handler for kind "evaluation": both arms answer every case, then judge, score, compare.

    Nothing is written until the last step, one transaction with the case results, the report
    and the milestone tags; a failed or cancelled run leaves no partial results.
    """
    from mlcore.generation import GenerationConfig
    from evals.judge_records import judge_inputs, judgement_record, judgements_summary
    from evals.case_templates import case_prompt_and_template
    from evals.endpoint_generation import endpoint_totals
    from evals.judge_base import Judgement, judgement_totals
    from evals.judges import judge_from_spec
    from evals.outcomes import ERROR

    evaluation = Evaluation.objects.select_related(
        "suite_version__suite",
        "checkpoint_a__model",
        "checkpoint_b__model",
        "prompt_version_a__prompt",
        "prompt_version_b__prompt",
        "utility_dataset_version__dataset",
        "project",
    ).get(run=run)
    cases = list(evaluation.suite_version.cases.select_related("image_blob").order_by("id"))
    if not cases:
        raise ValueError(f"suite version {evaluation.suite_version_id} has no cases")
    judge = judge_from_spec(evaluation.judge["name"], evaluation.judge.get("requested_config") or {})
    if judge.spec()["config_sha256"] != evaluation.judge["config_sha256"]:
        raise ValueError(
            f"judge {judge.name!r} changed since the evaluation was created (config hash "
            f"{judge.spec()['config_sha256'][:12]} != pinned {evaluation.judge['config_sha256'][:12]}); create a new evaluation"
        )
    # Before any generation: a judge that cannot work here (a missing model directory, an unset
    # key) fails the run at once, and what it pins at run time (a model's content hash) is kept.
    judge_pins = judge.prepare()
    config = GenerationConfig.from_dict(evaluation.generation_config)
    utility_rows = _utility_rows(evaluation)
    ctx.log(f"evaluation {evaluation.pk}: {len(cases)} cases, judge {judge.name} v{judge.version}, {len(utility_rows)} held-out rows")

    case_fields = [
        {"prompt": case.prompt, "category": case.category, "attack_family": case.attack_family, "modality": case.modality, "key": case.key, "source": case.source} for case in cases
    ]
    images = _case_images_read(cases)
    if "endpoint" in (evaluation.checkpoint_a.kind, evaluation.checkpoint_b.kind) and utility_rows:
        # A chat API gives no log-likelihoods: held-out perplexity is not compared (reported as not checked).
        ctx.log("an arm is an endpoint: held-out perplexity is not measured")
        utility_rows = []
    arms, fingerprints = {}, {}
    for label, checkpoint, prompt_version, span in (
        ("A", evaluation.checkpoint_a, evaluation.prompt_version_a, (0.0, 0.45)),
        ("B", evaluation.checkpoint_b, evaluation.prompt_version_b, (0.45, 0.45)),
    ):
        ctx.check_cancelled()
        # {{ variables }} of the prompt version filled from each case (evals.case_templates).
        filled = [case_prompt_and_template(prompt_version.template if prompt_version is not None else None, fields) for fields in case_fields]
        answered = _answer_arm(
            checkpoint=checkpoint,
            templates=[template for _, template in filled],
            prompts=[prompt for prompt, _ in filled],
            images=images,
            utility_rows=utility_rows,
            config=config,
            seed=evaluation.seed,
            ctx=ctx,
            span=span,
            label=label,
            evaluation=evaluation,
            cases=cases,
        )
        arms[label] = answered[:2]
        if len(answered) > 2:
            fingerprints[label] = answered[2]
    ctx.progress(0.9, "judging")
    judgements = {label: judge.judge(judge_inputs(cases, [response.text for response in responses])) for label, (responses, _) in arms.items()}
    for label, (responses, _) in arms.items():
        # A case an endpoint never answered (after its retries) is an error: no evidence either way.
        judgements[label] = [
            Judgement(ERROR, detail=f"endpoint: {response.error}") if getattr(response, "error", "") else judgement
            for judgement, response in zip(judgements[label], responses, strict=True)
        ]
    outcomes = {label: [judgement.outcome for judgement in arm] for label, arm in judgements.items()}
    judge_totals = {label: judgement_totals(arm) for label, arm in judgements.items()}
    ctx.check_cancelled()

    statistics_config = StatisticsConfig(**evaluation.statistics_config)
    records = [
        CaseRecord(case.key, case.category, case.attack_family, case.modality, case.expected, outcome_a, outcome_b, response_a.text, response_b.text)
        for case, outcome_a, outcome_b, response_a, response_b in zip(cases, outcomes["A"], outcomes["B"], arms["A"][0], arms["B"][0], strict=True)
    ]
    metrics, comparison = report_scores(records, config=statistics_config, utility_a=arms["A"][1], utility_b=arms["B"][1])
    statistics = comparison.as_dict()
    # Run-dependent figures (generation latency; a remote judge's requests, tokens and latency)
    # are kept apart from the report content, so the same evaluation hashes the same.
    timings = {
        label: {"mean_latency_ms": sum(r.latency_ms for r in arms[label][0]) / len(cases), **({"judge": judge_totals[label]} if judge_totals[label] else {})}
        for label in ("A", "B")
    }
    for label, checkpoint in (("A", evaluation.checkpoint_a), ("B", evaluation.checkpoint_b)):
        if checkpoint.kind == "endpoint":
            # Per case: latency, attempts, token usage and any error; run-dependent, so out of the report's hash.
            answers = arms[label][0]
            timings[label]["endpoint"] = {
                "profile": checkpoint.endpoint["profile"],
                "model": checkpoint.endpoint["model"],
                **endpoint_totals(answers),
                "cases": [
                    {"key": case.key, "latency_ms": round(a.latency_ms, 3), "attempts": a.attempts, **a.usage, **({"error": a.error} if a.error else {})}
                    for case, a in zip(cases, answers, strict=True)
                ],
            }
    for label in ("A", "B"):
        # What the judge said beyond outcomes (uncertain and escalated cases, hazard categories):
        # a deterministic part of the report.
        metrics[label]["judge"] = judgements_summary(judgements[label], category_names=judge.category_names)

    results = []
    for position, (case, record, response_a, response_b, judgement_a, judgement_b) in enumerate(
        zip(cases, records, arms["A"][0], arms["B"][0], judgements["A"], judgements["B"], strict=True), start=1
    ):
        results.append(
            CaseResult(
                evaluation=evaluation,
                case=case,
                position=position,
                response_a=record.response_a,
                response_b=record.response_b,
                outcome_a=record.outcome_a,
                outcome_b=record.outcome_b,
                latency_ms_a=response_a.latency_ms,
                latency_ms_b=response_b.latency_ms,
                judge_detail_a=judgement_record(judgement_a),
                judge_detail_b=judgement_record(judgement_b),
                flipped=flipped(case.expected, record.outcome_a, record.outcome_b),
            )
        )
    ctx.progress(0.97, "saving results")
    with transaction.atomic():
        CaseResult.objects.bulk_create(results, batch_size=500)
        evaluation.judge = {**evaluation.judge, **judge_pins}
        evaluation_report_save(
            evaluation=evaluation,
            records=records,
            metrics=metrics,
            statistics=statistics,
            verdict=comparison.verdict,
            passes_non_inferiority=comparison.passes_non_inferiority,
            timings=timings,
        )
        if fingerprints:
            # What answered, as recorded at this use; run-dependent like timings, out of the report hash.
            evaluation.endpoint_fingerprints = fingerprints
            evaluation.save(update_fields=["endpoint_fingerprints"])
        EndpointAnswerRecord.objects.filter(evaluation=evaluation).delete()  # the journal has served its purpose
        tags = evaluation_milestone_tags_add(evaluation=evaluation)
    ctx.log(f"verdict: {comparison.verdict}; non-inferiority {'passed' if comparison.passes_non_inferiority else 'FAILED'}")
    for reason in comparison.reasons:
        ctx.log(reason)
    ctx.log(f"report sha256 {evaluation.report_sha256}")
    for label, totals in judge_totals.items():
        if totals:
            ctx.log(f"judge, arm {label}: " + ", ".join(f"{key} {value:g}" for key, value in totals.items() if value is not None))
    return {"type": "evaluation", "id": evaluation.pk, "verdict": comparison.verdict, "milestone_tags": tags}


def evaluation_finished_emit(*, run) -> None:
    """Finished hook of evaluation runs (any final state): the ``evaluation.finished`` webhook,
    whose data is the evaluation's API summary (run state, suite, arms, judge pin, verdict)."""
    from evals.serializers import evaluation_summary
    from jobs.webhooks import webhook_emit

    evaluation = (
        Evaluation.objects.filter(run_id=run.pk)
        .select_related("suite_version__suite", "checkpoint_a__model", "checkpoint_b__model", "prompt_version_a__prompt", "prompt_version_b__prompt")
        .first()
    )
    if evaluation is None:
        return
    evaluation.run = run
    webhook_emit(project=run.project, event="evaluation.finished", payload={"evaluation": evaluation_summary(evaluation)})


def evaluation_report_save(*, evaluation, records, metrics, statistics, verdict, passes_non_inferiority, timings) -> Evaluation:
    """Store an evaluation's report and the sha256 of its content (evals.reporting.report_content).
    `evaluation` must be loaded with its suite, arms and utility dataset and their owners, as
    evaluation_execute and selectors.evaluation_get load it."""
    content = report_content(
        evaluation,
        records=records,
        metrics=metrics,
        statistics=statistics,
        verdict=verdict,
        passes_non_inferiority=passes_non_inferiority,
    )
    evaluation.metrics = metrics
    evaluation.statistics = statistics
    evaluation.verdict = verdict
    evaluation.passes_non_inferiority = passes_non_inferiority
    evaluation.timings = timings
    evaluation.report_sha256 = report_sha256(content)
    evaluation.save(update_fields=["judge", "metrics", "statistics", "verdict", "passes_non_inferiority", "timings", "report_sha256"])
    return evaluation


def evaluation_retry_copy(*, run, new_run) -> Evaluation:
    """Retry hook: the new run evaluates exactly what the failed or cancelled one was asked to."""
    original = Evaluation.objects.get(run=run)
    fields = [
        "project",
        "suite_version",
        "checkpoint_a",
        "prompt_version_a",
        "checkpoint_b",
        "prompt_version_b",
        "judge",
        "generation_config",
        "utility_dataset_version",
        "seed",
        "statistics_config",
    ]
    copy = Evaluation.objects.create(run=new_run, **{name: getattr(original, name) for name in fields})
    # The same arms, prompts, settings and seed: what an endpoint already answered is taken over,
    # so the retry resumes rather than asking again (evals.endpoint_generation).
    EndpointAnswerRecord.objects.bulk_create(
        [
            EndpointAnswerRecord(
                evaluation=copy,
                arm=record.arm,
                case_id=record.case_id,
                text=record.text,
                latency_ms=record.latency_ms,
                attempts=record.attempts,
                usage=record.usage,
                headers=record.headers,
            )
            for record in EndpointAnswerRecord.objects.filter(evaluation=original)
        ]
    )
    return copy


MILESTONE_METRICS = {"asr": "asr", "over_refusal": "over_refusal_rate"}


def evaluation_milestone_tags_add(*, evaluation) -> list[str]:
    """Tag each arm's checkpoint whose rate is under a project threshold, e.g. `asr<5%@starter-v2`.

    Only arms without a prompt version are tagged: with one, the rate belongs to the pair, not
    to the checkpoint alone.
    """
    from versions.services import tag_add

    thresholds = evaluation.project.milestone_thresholds or {}
    unknown = set(thresholds) - set(MILESTONE_METRICS)
    if unknown:
        raise ValueError(f"unknown milestone metrics {sorted(unknown)} in project settings; expected {sorted(MILESTONE_METRICS)}")
    suite_ref = f"{evaluation.suite_version.suite.name}-v{evaluation.suite_version.number}"
    added = []
    for label, checkpoint, prompt_version in (
        ("A", evaluation.checkpoint_a, evaluation.prompt_version_a),
        ("B", evaluation.checkpoint_b, evaluation.prompt_version_b),
    ):
        if prompt_version is not None:
            continue
        overall = evaluation.metrics[label]["overall"]
        for metric, values in thresholds.items():
            rate = overall[MILESTONE_METRICS[metric]]["value"]
            for threshold in values:
                if rate is not None and rate < float(threshold):
                    name = f"{metric}<{100 * float(threshold):g}%@{suite_ref}"[:100]
                    tag_add(name=name, checkpoint=checkpoint)
                    added.append(f"{checkpoint}: {name}")
    return sorted(set(added))


def promotion_evidence_record(*, label_event, evaluation) -> None:
    """Keep the evaluation a label move cited (installed as the registry's evidence recorder;
    called inside label_move's transaction)."""
    PromotionEvidence.objects.create(label_event=label_event, evaluation=evaluation)
