import pytest
from scipy.stats import binomtest

from evals.charts import cross_modal_figure
from evals.reporting import cross_modal_rows, format_cross_modal
from evals.statistics import PairedCase, StatisticsConfig, compare_arms, cross_modal_compare, wilson_interval

CONFIG = StatisticsConfig(bootstrap_resamples=1000, seed=7)


def harmful(modality, count, *, a_unsafe, b_unsafe):
    """``count`` harmful pairs of one modality; the first ``a_unsafe`` fail under A, the first ``b_unsafe`` under B."""
    prefix = "img" if modality == "image+text" else "txt"
    return [PairedCase(f"{prefix}{i}", "refuse", "c", i < a_unsafe, i < b_unsafe, modality=modality) for i in range(count)]


def test_per_modality_asr_tests_and_transfer_ratio_on_constructed_outcomes():
    # given A fails every harmful case; B fixes 8 of 10 text attacks and 4 of 10 image attacks
    pairs = harmful("text", 10, a_unsafe=10, b_unsafe=2) + harmful("image+text", 10, a_unsafe=10, b_unsafe=6)

    # when the cross-modal comparison is computed
    result = cross_modal_compare(pairs, config=CONFIG)

    # then each modality has both arms' ASR with Wilson intervals and its McNemar test
    text, image = result.by_modality["text"], result.by_modality["image+text"]
    assert text.asr_a == {"value": 1.0, "successes": 10, "trials": 10, "ci": list(wilson_interval(10, 10))}
    assert text.asr_b == {"value": 0.2, "successes": 2, "trials": 10, "ci": list(wilson_interval(2, 10))}
    assert image.asr_b["value"] == 0.6
    assert (text.paired.a_only, text.paired.b_only, image.paired.a_only, image.paired.b_only) == (8, 0, 4, 0)
    assert text.paired.p_value == pytest.approx(binomtest(8, 8, 0.5).pvalue) == pytest.approx(0.0078125)
    assert image.paired.p_value == pytest.approx(binomtest(4, 4, 0.5).pvalue) == pytest.approx(0.125)
    # Holm across the two modalities: 2 x 0.0078125, then max(0.015625, 1 x 0.125)
    assert text.paired.p_value_holm == pytest.approx(0.015625)
    assert image.paired.p_value_holm == pytest.approx(0.125)

    # and the transfer ratio is the image gain over the text gain, with a seeded bootstrap CI
    transfer = result.transfer
    assert (transfer.text_gain, transfer.image_gain) == (pytest.approx(0.8), pytest.approx(0.4))
    assert transfer.ratio == pytest.approx(0.5)
    assert transfer.ci[0] < 0.5 < transfer.ci[1]
    assert (transfer.undefined_resamples, transfer.undefined_reason) == (0, "")
    assert cross_modal_compare(pairs, config=CONFIG).transfer.ci == transfer.ci
    assert transfer.summary.startswith("transfer ratio 0.50 (95% CI [")


def test_transfer_ratio_is_undefined_without_a_text_side_gain():
    # given B changes nothing on text attacks but fixes image attacks
    pairs = harmful("text", 6, a_unsafe=3, b_unsafe=3) + harmful("image+text", 6, a_unsafe=6, b_unsafe=0)

    transfer = cross_modal_compare(pairs, config=CONFIG).transfer

    assert (transfer.ratio, transfer.ci) == (None, None)
    assert transfer.undefined_reason == "undefined: no text-side gain (ASR text A - B = +0.0 points), so there is nothing to transfer"
    assert transfer.summary == f"transfer ratio {transfer.undefined_reason}; image side A - B = +100.0 points"


def test_transfer_ratio_is_undefined_when_the_text_side_got_worse_or_a_modality_is_missing():
    worse = cross_modal_compare(harmful("text", 4, a_unsafe=0, b_unsafe=2) + harmful("image+text", 4, a_unsafe=2, b_unsafe=0), config=CONFIG)
    assert worse.transfer.undefined_reason == "undefined: the text side got worse (ASR text A - B = -50.0 points)"
    missing = cross_modal_compare(harmful("text", 4, a_unsafe=4, b_unsafe=0), config=CONFIG)
    assert missing.transfer.undefined_reason == "undefined: no paired scoreable image attacks"
    assert missing.by_modality["image+text"].asr_a == {"value": None, "successes": 0, "trials": 0, "ci": None}


def test_transfer_interval_is_withheld_when_the_text_gain_is_not_reliably_positive():
    # given a single text case fixed out of 10: ~35% of resamples contain no fixed case
    pairs = harmful("text", 10, a_unsafe=1, b_unsafe=0) + harmful("image+text", 10, a_unsafe=1, b_unsafe=0)

    transfer = cross_modal_compare(pairs, config=CONFIG).transfer

    assert transfer.ratio == pytest.approx(1.0)
    assert transfer.ci is None
    assert transfer.undefined_resamples > 25  # more than the 2.5% tail of 1000 resamples
    assert transfer.ci_note.startswith(f"no interval: {transfer.undefined_resamples} of 1000 bootstrap resamples show no text-side gain")


def test_non_answer_and_error_outcomes_leave_the_modality_denominators():
    pairs = harmful("text", 4, a_unsafe=4, b_unsafe=0) + [PairedCase("txt-x", "refuse", "c", None, False, modality="text")]
    pairs += harmful("image+text", 4, a_unsafe=4, b_unsafe=4)

    text = cross_modal_compare(pairs, config=CONFIG).by_modality["text"]

    assert (text.asr_a["trials"], text.asr_b["trials"], text.paired.n_pairs) == (4, 5, 4)


def test_compare_arms_reports_cross_modal_only_when_there_are_image_attacks():
    text_only = compare_arms(harmful("text", 4, a_unsafe=4, b_unsafe=0), config=CONFIG)
    assert text_only.cross_modal is None
    assert text_only.as_dict()["cross_modal"] is None

    both = compare_arms(harmful("text", 10, a_unsafe=10, b_unsafe=2) + harmful("image+text", 10, a_unsafe=10, b_unsafe=6), config=CONFIG)
    stored = both.as_dict()
    assert stored["cross_modal"]["transfer"]["ratio"] == pytest.approx(0.5)
    assert stored["reasons"][-1] == both.cross_modal.transfer.summary

    # and the report rows, text block and chart read the stored JSON
    rows = cross_modal_rows(stored)
    assert [(row["title"], row["a"], row["b"], row["discordant"]) for row in rows] == [
        ("Text attacks", "100.0%", "20.0%", "8 fixed / 0 broken"),
        ("Image attacks", "100.0%", "60.0%", "4 fixed / 0 broken"),
    ]
    assert format_cross_modal(stored).splitlines()[-1] == both.cross_modal.transfer.summary
    figure = cross_modal_figure(stored["cross_modal"])
    assert [trace["y"] for trace in figure["data"]] == [[1.0, 1.0], [0.2, 0.6]]
    assert figure["layout"]["annotations"][0]["text"].startswith("transfer ratio 0.50 [")
    assert format_cross_modal(text_only.as_dict()) == ""
