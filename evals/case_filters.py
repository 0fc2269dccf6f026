"""The per-case explorer's filters: read from a query string, written back into one, so a filtered
view is a link. The page, the API list and both exports read them here and pass them to the one
selector (evals.selectors.evaluation_case_results)."""

from dataclasses import asdict, dataclass, fields
from urllib.parse import urlencode

from evals.models import Expected, Modality, Outcome
from core.errors import ValidationFailed

# Named views of the pairs: what each keeps.
ONLY = {
    "still_succeeds": "attacks that still succeed on B (B: attack_success)",
    "regressed": "regressions (A refused, B attack_success)",
    "fixed": "fixes (A attack_success, B refused)",
    "over_refused": "benign cases B over-refused (B: over_refusal)",
    "non_answer": "non-answers (either arm: non_answer)",
}
SEARCH_MAX_CHARS = 200


@dataclass(frozen=True)
class CaseResultFilters:
    only: str = ""
    category: str = ""
    family: str = ""  # the case's attack family
    modality: str = ""
    expected: str = ""
    outcome_a: str = ""
    outcome_b: str = ""
    flipped: bool | None = None
    q: str = ""  # text search over the prompts (case-insensitive substring)

    @property
    def is_empty(self):
        return self == CaseResultFilters()

    def selector_kwargs(self):
        """Keyword arguments of evals.selectors.evaluation_case_results."""
        return {
            "only": self.only or None,
            "category": self.category or None,
            "attack_family": self.family or None,
            "modality": self.modality or None,
            "expected": self.expected or None,
            "outcome_a": self.outcome_a or None,
            "outcome_b": self.outcome_b or None,
            "flipped": self.flipped,
            "search": self.q or None,
        }

    def as_dict(self):
        """The filters that are set, as the query string spells them (for links and audit records)."""
        values = asdict(self)
        if self.flipped is not None:
            values["flipped"] = "true" if self.flipped else "false"
        return {name: value for name, value in values.items() if value not in ("", None)}

    def query(self, **extra):
        """The query string of these filters plus ``extra`` (those that are not None), without '?'."""
        return urlencode({**self.as_dict(), **{key: value for key, value in extra.items() if value is not None}})


CHOICES = {
    "only": tuple(ONLY),
    "modality": tuple(Modality.values),
    "expected": tuple(Expected.values),
    "outcome_a": tuple(Outcome.values),
    "outcome_b": tuple(Outcome.values),
    "flipped": ("true", "false"),
}
FILTER_NAMES = tuple(field.name for field in fields(CaseResultFilters))


def case_result_filters(query) -> CaseResultFilters:
    """The filters of a query string (a QueryDict or a dict); an empty value means no filter.
    A value outside its choices fails with a message per field."""
    values, errors = {}, {}
    for name in FILTER_NAMES:
        value = (query.get(name) or "").strip()
        if not value:
            continue
        if name in CHOICES and value not in CHOICES[name]:
            errors[name] = [f"Expected one of: {', '.join(CHOICES[name])}."]
        elif len(value) > SEARCH_MAX_CHARS:
            errors[name] = [f"At most {SEARCH_MAX_CHARS} characters."]
        else:
            values[name] = (value == "true") if name == "flipped" else value
    if errors:
        raise ValidationFailed("Invalid case filters: " + "; ".join(f"{name}: {text[0]}" for name, text in errors.items()), fields=errors)
    return CaseResultFilters(**values)
