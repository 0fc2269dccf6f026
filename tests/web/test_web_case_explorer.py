"""The per-case explorer of an evaluation: its page, its API list and its CSV/JSONL exports, all
through one selector (evals.selectors.evaluation_case_results)."""
import pytest

from evals.models import CaseResult
from tests.web import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation(project, user, lethe_var, explorer_pair):
    return builders.explorer_evaluation(project=project, actor=user, model_dirs=explorer_pair)


def test_the_explorer_evaluation_puts_every_case_where_the_builder_says(evaluation):
    outcomes = {r.case.key: (r.outcome_a, r.outcome_b) for r in CaseResult.objects.filter(evaluation=evaluation).select_related("case")}
    assert outcomes == builders.EXPLORER_OUTCOMES
