"""The project's promotion gate: its settings, and the hook through which a higher layer (evals)
installs the policy that judges a promotion's evidence.

The registry decides *when* evidence is needed (``versions.services.label_move``: a move of a
protected label to a version that never held it, with ``Project.require_evaluation_for_promotion``
on); the registered policy decides *whether* the cited evidence is good enough. With the gate on
and no policy registered, every such move is refused: the gate fails closed.

Gate settings belong to the project and only an admin changes them. Each one has a direction in
which it is stricter; an evaluation's author may tighten a setting for their evaluation but never
loosen it, and the gate re-checks the evaluation against the project's current values.
"""

import re
from dataclasses import dataclass

from django.utils.module_loading import import_string

from core.errors import ValidationFailed

_POLICY = {"path": ""}


def register_promotion_policy(dotted_path: str) -> None:
    """Install ``policy(*, project, label_name, current, target, evaluation) -> list[str]`` (the
    failed conditions as messages; empty means the promotion may go ahead). Called in
    ``AppConfig.ready``, by dotted path, so importing the registry imports no higher layer."""
    _POLICY["path"] = dotted_path


def promotion_policy():
    """The registered policy callable, or None when no app installed one."""
    return import_string(_POLICY["path"]) if _POLICY["path"] else None


# What the registry shows of a label move's safety evidence (versions.selectors.label_move_impact
# and label_move_choices) comes from the evaluation app through this hook, as the policy does.
_EVIDENCE = {"move": "", "verdicts": ""}


def register_move_evidence(*, move: str, verdicts: str) -> None:
    """Install, by dotted path, ``move(*, project, label_name, current, target, evaluation,
    gate_required) -> dict`` (the latest finished evaluation between the two versions, whether it
    measured the target less safe, and the gate's answer; the keys of
    versions.selectors.NO_EVIDENCE) and ``verdicts(*, versions) -> {version pk: dict}`` (each
    version's latest finished evaluation, for the label page's version picker)."""
    _EVIDENCE.update(move=move, verdicts=verdicts)


def move_evidence():
    """(move, verdicts) callables, or (None, None) when no app installed them."""
    if not _EVIDENCE["move"]:
        return None, None
    return import_string(_EVIDENCE["move"]), import_string(_EVIDENCE["verdicts"])


# A move may cite an evaluation as its evidence (by id, from the label page, the API and
# move_label); the evaluation app resolves the id, so the registry never reads its tables.
_CITED = {"path": ""}


def register_cited_evaluation(dotted_path: str) -> None:
    """Install ``cited(*, project, evaluation_id, with_arms) -> evaluation or None`` (None: no such
    evaluation in the project), by dotted path, in ``AppConfig.ready``."""
    _CITED["path"] = dotted_path


def cited_evaluation(*, project, evaluation_id, with_arms=False):
    """The project's evaluation ``evaluation_id`` (``with_arms``: its checkpoints and prompt
    versions loaded), or None when there is none, or no app installed evaluations."""
    if not _CITED["path"]:
        return None
    return import_string(_CITED["path"])(project=project, evaluation_id=evaluation_id, with_arms=with_arms)


# The evaluation a move cited is the evaluation app's record (evals.PromotionEvidence, keyed by
# the label event), written and read back through these two hooks: the registry's label history
# shows it without reading the evaluation app's tables.
_EVIDENCE_RECORD = {"record": "", "cited": ""}


def register_promotion_evidence(*, record: str, cited: str) -> None:
    """Install, by dotted path, ``record(*, label_event, evaluation)`` (called inside label_move's
    transaction when a move cites an evaluation) and ``cited() -> expression`` (the id of the
    evaluation a label event cited, as an expression over a LabelEvent queryset's ``pk``, so
    the history reads it in the statement that reads the events)."""
    _EVIDENCE_RECORD.update(record=record, cited=cited)


def promotion_evidence_record(*, label_event, evaluation) -> None:
    if evaluation is not None and _EVIDENCE_RECORD["record"]:
        import_string(_EVIDENCE_RECORD["record"])(label_event=label_event, evaluation=evaluation)


def label_events_with_evidence(events):
    """``events`` (a LabelEvent queryset) with ``evaluation_id``: the evaluation each move cited,
    or None. No extra statement."""
    from django.db.models import IntegerField, Value

    if not _EVIDENCE_RECORD["cited"]:
        return events.annotate(evaluation_id=Value(None, output_field=IntegerField()))
    return events.annotate(evaluation_id=import_string(_EVIDENCE_RECORD["cited"])())


# Which way each setting is stricter, for the promotion gate's question "is B no worse than A?".
HIGHER = "higher"
LOWER = "lower"


@dataclass(frozen=True)
class GateSetting:
    """One statistics setting the project owns: its column on Project, its bounds and the
    direction that makes the gate harder to pass."""

    name: str  # the key in the API's promotion_gate object and in an evaluation's statistics_config
    kind: type  # float or int
    minimum: float
    maximum: float
    stricter: str  # HIGHER or LOWER
    why: str  # why that direction is stricter (shown in errors and docs)
    open_minimum: bool = False  # the minimum itself is not allowed

    @property
    def column(self):
        return f"gate_{self.name}"

    def is_looser(self, value, project_value) -> bool:
        return value < project_value if self.stricter == HIGHER else value > project_value

    def bounds_text(self):
        low = f"({self.minimum:g}" if self.open_minimum else f"[{self.minimum:g}"
        return f"{low}, {self.maximum:g}]"


# alpha: the verdict calls B `less safe` only when McNemar's p < alpha, so a smaller alpha hides
# regressions: for a regression check a LARGER alpha is stricter. The margins bound how much worse
# B may be and still pass non-inferiority; confidence widens the interval whose upper bound must
# stay under a margin. Error share and case minimums decide whether there is enough evidence.
# The minimum judge calibration is a project setting of its own (Project.min_judge_agreement, with
# the calibration set it is measured on), checked by evals.gate.judge_calibration_gate_check.
GATE_SETTINGS = (
    GateSetting("alpha", float, 0.0, 0.5, HIGHER, "a larger alpha flags a regression in attack success more readily", open_minimum=True),
    GateSetting("confidence", float, 0.5, 0.999, HIGHER, "a higher confidence widens the interval whose upper bound must stay within the non-inferiority margins"),
    GateSetting("failure_to_help_margin", float, 0.0, 1.0, LOWER, "a smaller margin allows B less extra failure to help on benign cases"),
    GateSetting("perplexity_ratio_margin", float, 1.0, 10.0, LOWER, "a smaller margin allows B less loss of utility (perplexity)"),
    GateSetting("min_harmful_cases", int, 0, 1_000_000, HIGHER, "more scoreable harmful cases are more evidence"),
    GateSetting("min_benign_cases", int, 0, 1_000_000, HIGHER, "more scoreable benign cases are more evidence"),
    GateSetting("max_error_share", float, 0.0, 1.0, LOWER, "a smaller share of judge or generation errors leaves less unscored"),
)
GATE_SETTINGS_BY_NAME = {setting.name: setting for setting in GATE_SETTINGS}
GATE_LISTS = ("allowed_suites", "allowed_judges")
MAX_LIST_ENTRIES = 100
# A suite by name (any version) or name@number; a judge by name.
SUITE_REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(@[1-9][0-9]{0,8})?$")
JUDGE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def project_gate_settings(project) -> dict:
    """The project's gate settings as the API shows them: every statistics setting and both lists."""
    values = {setting.name: getattr(project, setting.column) for setting in GATE_SETTINGS}
    values.update({name: list(getattr(project, f"gate_{name}")) for name in GATE_LISTS})
    return values


def gate_settings_validate(changes) -> dict:
    """``changes`` (a partial promotion_gate object) checked and normalised to {column: value};
    every problem is reported at once, each under its own field."""
    if not isinstance(changes, dict):
        raise ValidationFailed("promotion_gate must be an object of settings.", fields={"promotion_gate": ["Expected an object."]})
    errors, columns = {}, {}
    known = set(GATE_SETTINGS_BY_NAME) | set(GATE_LISTS)
    for name in sorted(set(changes) - known):
        errors[f"promotion_gate.{name}"] = [f"Unknown gate setting; expected one of {', '.join(sorted(known))}."]
    for name, value in changes.items():
        setting = GATE_SETTINGS_BY_NAME.get(name)
        if setting is None:
            continue
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if setting.kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            errors[f"promotion_gate.{name}"] = ["Expected a whole number."]
        elif not number_ok or value != value:  # NaN compares unequal to itself
            errors[f"promotion_gate.{name}"] = ["Expected a number."]
        elif value < setting.minimum or value > setting.maximum or (setting.open_minimum and value == setting.minimum):
            errors[f"promotion_gate.{name}"] = [f"Must be in {setting.bounds_text()}."]
        else:
            columns[setting.column] = setting.kind(value)
    for name, pattern, what in (("allowed_suites", SUITE_REF_PATTERN, "a suite name or name@number"), ("allowed_judges", JUDGE_NAME_PATTERN, "a judge name")):
        if name not in changes:
            continue
        value = changes[name]
        if not isinstance(value, list) or len(value) > MAX_LIST_ENTRIES:
            errors[f"promotion_gate.{name}"] = [f"Expected a list of at most {MAX_LIST_ENTRIES} entries, each {what}."]
            continue
        bad = [entry for entry in value if not isinstance(entry, str) or not pattern.match(entry)]
        if bad:
            errors[f"promotion_gate.{name}"] = [f"Not {what}: {', '.join(repr(entry) for entry in bad[:5])}."]
            continue
        columns[f"gate_{name}"] = sorted(set(value))
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(
            f"Invalid promotion gate settings: {first.split('.', 1)[1]}: {errors[first][0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""), fields=errors
        )
    return columns


def looser_than_project(project, statistics_config) -> list[str]:
    """Each setting in ``statistics_config`` (an evaluation's) that is looser than the project's
    current value, as a message; settings the config does not hold are not judged here."""
    problems = []
    for setting in GATE_SETTINGS:
        if setting.name not in statistics_config:
            continue
        value, required = statistics_config[setting.name], getattr(project, setting.column)
        if setting.is_looser(value, required):
            bound = "at least" if setting.stricter == HIGHER else "at most"
            problems.append(f"{setting.name} = {value:g} is looser than the project's {required:g} (it must be {bound} {required:g}: {setting.why})")
    return problems
