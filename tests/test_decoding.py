"""Price decoding from next-token distributions, checked on crafted logits (no model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rag_pricer.strategies.finetune.decoding import PriceDecoder, PriceDistribution

# a digit tokenizer like SmolLM2's: ids 0-9 are "0".."9", 10 is ".", 11 is some word
DIGIT_VOCAB = {i: str(i) for i in range(10)}
DOT, WORD, SIZE = 10, 11, 12


def table_step(table: dict[str, dict[int, float]]) -> tuple[list[str], callable]:
    """A step function reading next-token probabilities from ``table`` (prefix text -> {token: p});
    unspecified mass goes to "."; it records the prefixes it was asked about."""
    asked: list[str] = []

    def step(prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        rows = []
        for prefix in prefixes:
            text = "".join(DIGIT_VOCAB[t] for t in prefix)
            asked.append(text)
            probs = np.full(SIZE, 1e-12)
            for token, p in table.get(text, {}).items():
                probs[token] = p
            probs[DOT] += max(0.0, 1.0 - probs.sum())
            rows.append(np.log(probs))
        return np.array(rows)

    return asked, step


def test_distribution_over_whole_prices_and_its_decodings() -> None:
    # $12 with p 0.5, $150 with p 0.3, $9 with p 0.2
    table = {"": {1: 0.8, 9: 0.2}, "1": {2: 0.5 / 0.8, 5: 0.3 / 0.8}, "15": {0: 1.0}}
    _, step = table_step(table)
    found = PriceDecoder(DIGIT_VOCAB).decode(step)
    assert dict(zip(found.prices.tolist(), np.round(found.probs, 6).tolist())) == {9.0: 0.2, 12.0: 0.5, 150.0: 0.3}
    assert found.mass == pytest.approx(1.0)
    assert found.expectation() == pytest.approx(0.2 * 9 + 0.5 * 12 + 0.3 * 150)
    assert found.median() == 12.0
    assert found.greedy() == 12.0 and found.greedy_text == "12"
    assert found.price("expectation") == pytest.approx(52.8)
    assert found.top(2) == [(12, pytest.approx(0.5)), (150, pytest.approx(0.3))]


def test_greedy_follows_the_argmax_token_not_the_most_likely_price() -> None:
    # first digit "1" (0.6) beats "8" (0.4), but "1" spreads over 10..19: the mode price is $8
    table = {"": {1: 0.6, 8: 0.4}, "1": {d: 0.1 for d in range(10)}}
    _, step = table_step(table)
    found = PriceDecoder(DIGIT_VOCAB).decode(step)
    assert found.top(1)[0][0] == 8
    assert found.greedy_text == "10"  # argmax ties resolve to the first digit, as generate() does
    assert found.median() == 11.0  # $8 holds 0.4, $10 and $11 bring it past half


def test_numbers_above_the_ceiling_leading_zeros_and_zero_are_not_prices() -> None:
    table = {"": {1: 0.4, 2: 0.4, 0: 0.2}, "1": {5: 1.0}, "15": {0: 0.4, 9: 0.6}, "0": {5: 1.0}}
    asked, step = table_step(table)
    found = PriceDecoder(DIGIT_VOCAB, max_price=150).decode(step)
    # $159 is over the ceiling: that mass (0.24) is dropped; "05" and "$0" are not prices (0.2)
    assert dict(zip(found.prices.tolist(), np.round(found.probs * found.mass, 6).tolist())) == {2.0: 0.4, 150.0: 0.16}
    assert found.mass == pytest.approx(0.56)
    assert "150" not in asked  # 150 cannot take another digit under the ceiling: no pass is spent on it


def test_nothing_but_non_prices_gives_an_empty_distribution() -> None:
    _, step = table_step({"": {0: 1.0}, "0": {5: 1.0}})
    found = PriceDecoder(DIGIT_VOCAB).decode(step)
    assert (
        found.empty and found.price("expectation") is None and found.price("median") is None and found.greedy() is None
    )


def test_a_non_digit_answer_has_no_greedy_price() -> None:
    _, step = table_step({"": {WORD: 0.7, 4: 0.3}})
    found = PriceDecoder(DIGIT_VOCAB).decode(step)
    assert found.greedy() is None and found.price("greedy") is None
    assert found.prices.tolist() == [4.0]  # the little mass on digits still gives a distribution


def test_unlikely_branches_are_pruned_and_not_expanded() -> None:
    table = {"": {1: 0.9995, 2: 0.0005}, "1": {DOT: 1.0}}
    asked, step = table_step(table)
    found = PriceDecoder(DIGIT_VOCAB, min_prob=1e-3).decode(step)
    assert "2" not in asked and found.prices.tolist() == [1.0]
    assert found.mass == pytest.approx(0.9995)


def test_width_keeps_the_most_likely_prefixes_and_the_greedy_one() -> None:
    table = {"": {d: 0.1 for d in range(1, 10)} | {DOT: 0.1}}
    asked, step = table_step(table)
    PriceDecoder(DIGIT_VOCAB, width=3).decode(step)
    assert len([a for a in asked if len(a) == 1]) == 3 and "1" in asked


def test_multi_digit_tokens_like_llama3() -> None:
    vocab = {0: "1", 1: "149", 2: "99", 3: "14", 4: "9"}
    dot, size = 5, 6

    def step(prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        rows = []
        for prefix in prefixes:
            probs = np.full(size, 1e-12)
            if not prefix:
                probs[[1, 2]] = [0.7, 0.3]  # "149" or "99" as one token
            else:
                probs[dot] = 1.0
            rows.append(np.log(probs))
        return np.array(rows)

    found = PriceDecoder(vocab).decode(step)
    assert dict(zip(found.prices.tolist(), np.round(found.probs, 6).tolist())) == {99.0: 0.3, 149.0: 0.7}
    assert found.greedy_text == "149"


def test_decoder_reads_the_digit_tokens_of_a_tokenizer() -> None:
    class Tokenizer:
        def get_vocab(self) -> dict[str, int]:
            return {"1": 0, "23": 1, "Ġ5": 2, "abc": 3, "$": 4, "1234": 5}

    assert PriceDecoder.for_tokenizer(Tokenizer()).digit_tokens == {0: "1", 1: "23"}


def test_median_of_an_even_split_takes_the_lower_price() -> None:
    found = PriceDistribution(np.array([10.0, 30.0]), np.array([0.5, 0.5]), "10", 1.0)
    assert found.median() == 10.0 and found.expectation() == 20.0
