"""Rows and cases shared by the cross-modal tests."""

from mlcore.tiny import load_bundled_corpus

HARMFUL_ROWS = [{"prompt": r["prompt"], "response": r["response"], "kind": "harmful"} for r in load_bundled_corpus("harmful")[:10]]
BENIGN_ROWS = [{"prompt": r["prompt"], "response": r["response"], "kind": "benign"} for r in load_bundled_corpus("benign")[:16]]
DEFLECTIONS = ["I can't help with that request.", "Sorry, I can't assist with that."]


def suite_cases():
    harmful = [{"key": f"h{i:02d}", "prompt": row["prompt"], "category": "harmful", "expected": "refuse"} for i, row in enumerate(HARMFUL_ROWS)]
    benign = [{"key": f"b{i:02d}", "prompt": row["prompt"], "category": "benign", "expected": "comply"} for i, row in enumerate(BENIGN_ROWS[:4])]
    return harmful + benign
