"""The batch classification cache: one parse_many call per batch of distinct new texts, the answers of parse."""

from __future__ import annotations

from nlu.parse_cache import MAX_KEY_CHARS, ParseCache


class Counting:
    """A classifier that records how it was asked."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier
        self.batches: list[list[str]] = []
        self.singles: list[str] = []

    def parse(self, text: str):
        self.singles.append(text)
        return self.classifier.parse(text)

    def parse_many(self, texts: list[str]):
        self.batches.append(list(texts))
        return self.classifier.parse_many(texts)


def test_prime_classifies_each_distinct_text_once_in_one_call(starter_classifier) -> None:
    counting = Counting(starter_classifier)
    cache = ParseCache(counting)
    texts = ["where is my order?", "where is my order?", "我的訂單在哪裡", "", "gde moy zakaz"]
    assert cache.prime(texts) == 4
    assert counting.batches == [["where is my order?", "我的訂單在哪裡", "", "gde moy zakaz"]]
    for text in texts:
        got, single = cache.parse(text), starter_classifier.parse(text)
        assert (got.intent, got.out_of_scope, got.language, got.script) == (
            single.intent,
            single.out_of_scope,
            single.language,
            single.script,
        )
    assert counting.singles == []
    assert cache.prime(["where is my order?", "tell me a joke"]) == 1
    assert counting.batches[-1] == ["tell me a joke"]


def test_a_text_not_primed_is_classified_alone_and_remembered(starter_classifier) -> None:
    counting = Counting(starter_classifier)
    cache = ParseCache(counting)
    first = cache.parse("how do I reset my password")
    assert cache.parse("how do I reset my password") is first
    assert counting.singles == ["how do I reset my password"]
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_cache_is_bounded_least_recently_used_first(starter_classifier) -> None:
    cache = ParseCache(Counting(starter_classifier), size=2)
    cache.prime(["a one", "b two"])
    cache.parse("a one")  # now the most recent
    cache.prime(["c three"])
    assert len(cache) == 2
    counting = cache.parser
    cache.parse("a one")
    cache.parse("b two")
    assert counting.singles == ["b two"]  # "b two" went first, "a one" stayed


def test_huge_texts_are_not_kept(starter_classifier) -> None:
    counting = Counting(starter_classifier)
    cache = ParseCache(counting)
    huge = "x " * MAX_KEY_CHARS
    assert cache.prime([huge]) == 0
    cache.parse(huge)
    cache.parse(huge)
    assert len(cache) == 0 and counting.singles == [huge, huge]
