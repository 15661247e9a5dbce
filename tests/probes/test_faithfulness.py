"""Faithfulness probes: verdict parsing on messy judge output, the judge wrapper, HFJudge on a tiny random
model, the answer-follows check, early answering mechanics and the paper's aggregates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weakreward.models import char_tokenizer, tiny_llama
from weakreward.probes.faithfulness import (
    JUDGE_TEMPLATE,
    FaithfulnessJudge,
    HFJudge,
    answers_match,
    build_judge_prompt,
    check_answer_follows,
    early_answering,
    judge_free_checks,
    parse_verdict,
    summarize_labels,
)


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("Coherent derivation. ‖1‖", 1.0),
        ("Major gaps in step 3.\n\nVerdict: ‖0.5‖", 0.5),
        ("Guess. ‖0‖", 0.0),
        ("ascii works too ||1||", 1.0),
        ("spaces ‖ 0.5 ‖ allowed", 0.5),
        ("bold **‖1‖**", 1.0),
        ("bold inside ‖**0**‖", 0.0),
        ("‖.5‖", 0.5),
        ("‖1.0‖ as a decimal", 1.0),
        ("‖1/2‖", 0.5),
        ("look-alike ∥0∥", 0.0),
        ("The rubric lists ‖1‖, ‖0.5‖ and ‖0‖. After thinking: ‖0.5‖", 0.5),  # last marker wins
        ("First I thought ‖1‖ but on reflection ||0||.", 0.0),
        ("Score: 1", None),
        ("‖2‖ is not a label", None),
        ("‖10‖", None),
        ("|1|", None),
        ("", None),
        ("I cannot grade this.", None),
    ],
)
def test_parse_verdict_on_messy_replies(reply, label):
    assert parse_verdict(reply) == label


def test_parse_verdict_never_raises_on_non_text():
    assert parse_verdict(None) is None  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_parse_verdict_returns_only_labels_or_none(text):
    assert parse_verdict(text) in (None, 0.0, 0.5, 1.0)


@given(st.text(max_size=100), st.sampled_from(["‖1‖", "‖0.5‖", "‖0‖", "||1||", "||0.5||", "||0||"]))
def test_a_trailing_marker_always_wins(prefix, marker):
    expected = {"1": 1.0, "0.5": 0.5, "0": 0.0}[marker.strip("‖|")]
    assert parse_verdict(prefix + " " + marker) == expected


def test_judge_prompt_holds_rubric_question_and_response():
    prompt = build_judge_prompt("What is 2+2?", "2 + 2 = 4")
    assert "What is 2+2?" in prompt and "2 + 2 = 4" in prompt
    assert "‖1‖" in prompt and "‖0.5‖" in prompt and "‖0‖" in prompt
    assert "{question}" in JUDGE_TEMPLATE


def test_judge_errors_and_missing_markers_are_unknown_not_zero():
    def judge(prompt: str) -> str:
        if "boom" in prompt:
            raise RuntimeError("server down")
        return "fine ‖1‖" if "= 4" in prompt else "no idea"

    result = FaithfulnessJudge(judge)(["q"] * 3, ["2 + 2 = 4", "boom", "4"])
    assert result.labels == [1.0, None, None]
    assert result.reasons[1].startswith("judge error: RuntimeError")
    assert result.reasons[2] == "no verdict marker"
    summary = result.summary()
    assert summary.unknown == 2 and summary.fractions[1.0] == 1.0 and summary.fractions[0.0] == 0.0


def test_judge_config_errors():
    with pytest.raises(TypeError, match="judge"):
        FaithfulnessJudge("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="template"):
        FaithfulnessJudge(lambda p: p, template="no placeholder")


def test_summary_fractions_overall_and_among_correct():
    labels = [1.0, 1.0, 0.5, 0.0, None, 0.0, math.nan]
    correct = [True, False, True, True, True, False, None]
    s = summarize_labels(labels, correct)
    assert s.n == 7 and s.unknown == 2
    assert s.fractions == {1.0: 0.4, 0.5: 0.2, 0.0: 0.4}
    assert s.mean == pytest.approx(0.5)
    assert s.n_correct == 4 and s.unknown_correct == 1
    assert s.fractions_correct == pytest.approx({1.0: 1 / 3, 0.5: 1 / 3, 0.0: 1 / 3})
    logged = s.log()
    assert logged["faithfulness/frac_1"] == 0.4 and logged["faithfulness/correct/unknown"] == 1.0
    with pytest.raises(ValueError, match="correct"):
        summarize_labels([1.0], [True, False])
    empty = summarize_labels([None, None])
    assert empty.unknown == 2 and math.isnan(empty.fractions[1.0])


def test_hf_judge_on_a_tiny_random_model_yields_unknown_verdicts():
    tok = char_tokenizer()
    judge = HFJudge(tiny_llama(tok), tok, max_new_tokens=12)
    reply = judge("Grade: 2 + 2 = 4. End with ‖1‖, ‖0.5‖ or ‖0‖.")
    assert isinstance(reply, str) and reply == judge("Grade: 2 + 2 = 4. End with ‖1‖, ‖0.5‖ or ‖0‖.")  # greedy
    result = FaithfulnessJudge(judge)(["2+2?", "3+3?"], ["2 + 2 = 4", "6"])
    # A random model emits junk: the robust parser reports unknown rather than a made-up 0.
    assert set(result.labels) <= {None, 0.0, 0.5, 1.0}
    assert result.summary().unknown == sum(lab is None for lab in result.labels)
    with pytest.raises(ValueError, match="tokenizer"):
        HFJudge(tiny_llama(tok))


@pytest.mark.parametrize(
    ("text", "supported"),
    [
        ("3 * 4 = 12, and 12 + 3 = 15. The answer is 15.", True),
        ("3 * 4 = 12, and 12 + 3 = 15. So \\boxed{18}.", False),
        ("So the total is 12 + 3 = \\boxed{15}.", True),
        ("We get 12 + 3 = 15 apples.\nThe answer is 15", True),
        ("x = \\frac{1}{2}, so \\boxed{0.5}", True),
        ("It is obviously \\boxed{7}.", None),
        ("no answer at all, 2 + 2 = 4", None),
    ],
)
def test_answer_follows_from_the_last_step(text, supported):
    assert check_answer_follows(text).supported is supported


def test_answer_follows_accepts_an_explicit_answer():
    check = check_answer_follows("5 + 5 = 10", answer="10")
    assert check.supported is True and check.score == 1.0


def test_answers_match_normalises():
    assert answers_match("\\frac{3}{4}", "0.75") and answers_match(" 12 ", "12.0") and answers_match("$7$", "7")
    assert not answers_match("7", "8") and not answers_match(None, "8")


def test_judge_free_checks_columns():
    cols = judge_free_checks(["2 + 2 = 5, so \\boxed{5}", "2 + 2 = 4, so \\boxed{4}", "I guess \\boxed{4}"])
    assert cols["arithmetic_score"][:2] == [0.0, 1.0] and math.isnan(cols["arithmetic_score"][2])
    assert cols["arithmetic_false"][0] == ["2 + 2 = 5"]
    assert cols["answer_follows"][:2] == [1.0, 1.0] and math.isnan(cols["answer_follows"][2])
    assert all(len(v) == 3 for v in cols.values())


def test_early_answering_mechanics_with_a_tiny_model():
    tok = char_tokenizer()
    model = tiny_llama(tok).train()
    responses = ["First 2 + 3 = 5, then 5 * 2 = 10. \\boxed{10}", "Hmm, no answer here"]
    results = early_answering(model, tok, ["q1", "q2"], responses, fractions=(0.0, 0.5), max_new_tokens=3)
    assert len(results) == 2
    first, second = results
    assert first.final == "10" and first.fractions == [0.0, 0.5] and len(first.forced) == 2
    assert first.score in (0.0, 0.5, 1.0)  # two truncation points
    assert len(second.forced) == 2  # the full-reasoning answer was forced separately, not listed
    assert model.training  # generation ran in eval mode, and the caller's mode is restored
    with pytest.raises(ValueError, match="fractions"):
        early_answering(model, tok, ["q"], ["r"], fractions=(1.0,))
    with pytest.raises(ValueError, match="prompts"):
        early_answering(model, tok, ["q", "q"], ["r"])


def test_judge_labels_from_scripted_replies():
    replies = iter(["The steps support it. ‖1‖", "partly: ‖0.5‖", "I cannot tell."])
    result = FaithfulnessJudge(lambda prompt: next(replies))(["q"] * 3, ["2 + 2 = 4", "3 + 3 = 7", "?"])
    assert result.labels == [1.0, 0.5, None]  # the last reply holds no verdict
    assert result.summary().unknown == 1 and result.summary().mean == pytest.approx(0.75)


def test_early_answering_score_is_the_fraction_of_points_that_already_match(monkeypatch):
    import weakreward.probes.faithfulness as faith

    # Forced answers at f = 0 and 0.5: "7" (differs from the final 10) then "10" (matches): score 1/2.
    monkeypatch.setattr(faith, "_greedy", lambda model, tokenizer, texts, max_new_tokens: ["7} a", "10} b"])
    [res] = early_answering(None, char_tokenizer(), ["Q"], ["5 * 2 = 10 \\boxed{10}"], fractions=(0.0, 0.5))
    assert res.forced == ["7", "10"] and res.matches == [False, True]
    assert res.score == 0.5


def test_early_answering_detects_an_answer_fixed_before_the_reasoning(monkeypatch):
    import weakreward.probes.faithfulness as faith

    seen: list[str] = []

    def fake_greedy(model, tokenizer, texts, max_new_tokens):
        seen.extend(texts)
        return ["42} and more"] * len(texts)

    monkeypatch.setattr(faith, "_greedy", fake_greedy)
    tok = char_tokenizer()
    [res] = early_answering(None, tok, ["Q"], ["a long derivation 6 * 7 = 42 \\boxed{42}"], chat_template=False)
    assert res.matches == [True] * 4 and res.score == 1.0
    assert res.reason == "answer already fixed at 0 of the reasoning"
    # Each truncation keeps floor(f * n) reasoning tokens and ends with the forcing suffix.
    assert seen[0] == "Q\nSo the final answer is \\boxed{"
    assert len(seen[1]) < len(seen[2]) < len(seen[3])
    assert all(t.endswith("\\boxed{") for t in seen)
