"""Output diversity: strategy clusters, distinct-n, answer entropy and the unbiased pass@k.

arXiv 2604.18574 finds that diversity *alone* does not predict whether RLVR generalises under weak
supervision (models that fail keep high output diversity), while faithfulness does. Its strategy
diversity over ``K`` sampled responses to one problem:

1. cluster the responses greedily by a pairwise "do these two use the same strategy?" judgement: each
   response joins the first existing cluster whose representative (first member) it matches, else starts
   a new one;
2. with ``p_j`` the fraction of responses in cluster ``j``, ``H = −Σ_j p_j log p_j`` (nats);
3. ``N_eff = exp(H)``, the effective number of strategies;
4. ``Div = (N_eff − 1) / (K − 1)`` in [0, 1].

The paper's text leaves ``K`` ambiguous. ``normalize="responses"`` (the default) takes ``K`` = the number
of responses: ``Div`` is 0 when all responses share one strategy and 1 when every response is its own
strategy, so it measures *how many* strategies relative to the samples. ``normalize="clusters"`` takes
``K`` = the number of clusters: ``Div`` then measures only how *evenly* the responses spread over the
strategies found (1 for any perfectly even split, however few clusters). With ``K ≤ 1`` there is nothing
to spread and ``Div = 0``.

"Faithful diversity" is the same computed over the responses a faithfulness probe labelled faithful.

The pairwise judgement is an LLM judge (`LLMStrategyJudge` around any ``str -> str`` callable), a built-in
lexical similarity with a threshold (`LexicalSimilarity`: Jaccard over word n-grams, or TF-IDF cosine), an
embedding similarity (`EmbeddingSimilarity` around a user-given ``texts -> vectors`` callable), or any
callable ``(a, b) -> bool``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from weakreward.rewards.answer_clusters import cluster_answers
from weakreward.rewards.base import Verifier
from weakreward.rewards.extraction import extract_answer

__all__ = [
    "STRATEGY_TEMPLATE",
    "DiversityResult",
    "EmbeddingSimilarity",
    "LLMStrategyJudge",
    "LexicalSimilarity",
    "answer_entropy",
    "cluster_strategies",
    "diversity_from_clusters",
    "distinct_n",
    "faithful_diversity",
    "pass_at_k",
    "strategy_diversity",
]

SameStrategy = Callable[[str, str], "bool | None"]

_WORD = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[^\sA-Za-z\d]")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


class LexicalSimilarity:
    """Same strategy when two responses are lexically similar enough.

    Args:
        method: ``"jaccard"``: Jaccard index of the two sets of word ``n``-grams; ``"tfidf"``: cosine of
            TF-IDF vectors of word ``n``-grams (document frequencies from the responses being clustered,
            set by `fit`; `cluster_strategies` calls it).
        threshold: Same strategy when the similarity is at least this.
        n: n-gram order (words; numbers and symbols are words too).

    Examples:
        >>> same = LexicalSimilarity(threshold=0.5)
        >>> same("add 2 and 3 to get 5", "add 2 and 3 to get 5 apples"), same("add 2 and 3", "count on fingers")
        (True, False)
    """

    def __init__(self, method: Literal["jaccard", "tfidf"] = "jaccard", threshold: float = 0.5, n: int = 2) -> None:
        if method not in ("jaccard", "tfidf"):
            raise ValueError(f"LexicalSimilarity.method must be 'jaccard' or 'tfidf', got {method!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"LexicalSimilarity.threshold must be in [0, 1], got {threshold!r}")
        if n < 1:
            raise ValueError(f"LexicalSimilarity.n must be >= 1, got {n!r}")
        self.method = method
        self.threshold = float(threshold)
        self.n = int(n)
        self._idf: dict[tuple[str, ...], float] = {}
        self._docs = 0

    def _grams(self, text: str) -> list[tuple[str, ...]]:
        words = _words(text)
        return _ngrams(words, self.n) if len(words) >= self.n else ([tuple(words)] if words else [])

    def fit(self, texts: Sequence[str]) -> LexicalSimilarity:
        """Set the TF-IDF document frequencies from ``texts`` (no effect on Jaccard)."""
        df: Counter[tuple[str, ...]] = Counter()
        for t in texts:
            df.update(set(self._grams(t)))
        self._docs = len(texts)
        self._idf = {g: math.log((1 + self._docs) / (1 + c)) + 1.0 for g, c in df.items()}
        return self

    def similarity(self, a: str, b: str) -> float:
        """The similarity in [0, 1] (two empty texts are identical: 1).

        Args:
            a: One response.
            b: The other.
        """
        ga, gb = self._grams(a), self._grams(b)
        if not ga and not gb:
            return 1.0
        if not ga or not gb:
            return 0.0
        if self.method == "jaccard":
            sa, sb = set(ga), set(gb)
            return len(sa & sb) / len(sa | sb)
        default = math.log((1 + self._docs) / 1) + 1.0
        ca, cb = Counter(ga), Counter(gb)
        va = {g: c * self._idf.get(g, default) for g, c in ca.items()}
        vb = {g: c * self._idf.get(g, default) for g, c in cb.items()}
        dot = sum(v * vb.get(g, 0.0) for g, v in va.items())
        norm = math.sqrt(sum(v * v for v in va.values())) * math.sqrt(sum(v * v for v in vb.values()))
        return dot / norm if norm else 0.0

    def __call__(self, a: str, b: str) -> bool:
        return self.similarity(a, b) >= self.threshold


class EmbeddingSimilarity:
    """Same strategy when the cosine similarity of two responses' embeddings is at least ``threshold``.

    Args:
        embed: A callable ``texts -> [N, D]`` array (a sentence encoder you load; nothing is bundled).
        threshold: Cosine threshold.

    Examples:
        >>> bag = lambda texts: [[t.count("add"), t.count("count")] for t in texts]
        >>> EmbeddingSimilarity(bag, 0.9)("add add", "add"), EmbeddingSimilarity(bag, 0.9)("add", "count")
        (True, False)
    """

    def __init__(self, embed: Callable[[Sequence[str]], Any], threshold: float = 0.85) -> None:
        if not callable(embed):
            raise TypeError("EmbeddingSimilarity.embed must be callable texts -> [N, D] array")
        self.embed = embed
        self.threshold = float(threshold)
        self._cache: dict[str, np.ndarray] = {}

    def fit(self, texts: Sequence[str]) -> EmbeddingSimilarity:
        """Embed ``texts`` in one batch (cached for the pairwise calls)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            vectors = np.asarray(self.embed(todo), dtype=np.float64)
            if vectors.ndim != 2 or len(vectors) != len(todo):
                raise ValueError(f"embed returned shape {vectors.shape}, expected [{len(todo)}, D]")
            for t, v in zip(todo, vectors):
                self._cache[t] = v
        return self

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity (0 when either vector is zero).

        Args:
            a: One response.
            b: The other.
        """
        self.fit([a, b])
        va, vb = self._cache[a], self._cache[b]
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return float(va @ vb) / norm if norm else 0.0

    def __call__(self, a: str, b: str) -> bool:
        return self.similarity(a, b) >= self.threshold


STRATEGY_TEMPLATE = """Two responses to the same problem follow. Do they use the same problem-solving \
strategy (the same method and key steps, even if worded or computed differently)? Ignore whether the \
final answers agree.

Response A:
{a}

Response B:
{b}

Answer with one word, "yes" or "no", on the last line."""
"""Prompt for `LLMStrategyJudge`; ``{a}`` and ``{b}`` are filled in."""


class LLMStrategyJudge:
    """A pairwise "same strategy?" judgement by a judge model (any callable ``str -> str``).

    The reply's last "yes" / "no" (case-insensitive, whole word) decides; a reply with neither, or a
    judge error, is *unknown*: returned as None, which `cluster_strategies` treats as "different" and
    counts in `DiversityResult.unknown_pairs`.

    Args:
        judge: The judge model as ``prompt -> reply``; an exception it raises makes the pair unknown.
        template: The prompt, with ``{a}`` and ``{b}`` replaced by the two responses (plain string
            replacement, so other braces need no escaping).

    Raises:
        TypeError: when ``judge`` is not callable.

    Examples:
        >>> judge = LLMStrategyJudge(lambda p: "Both expand the product.\\nYes")
        >>> judge("expand", "expand again"), LLMStrategyJudge(lambda p: "unsure")("a", "b") is None
        (True, True)
    """

    def __init__(self, judge: Callable[[str], str], template: str = STRATEGY_TEMPLATE) -> None:
        if not callable(judge):
            raise TypeError("LLMStrategyJudge.judge must be callable str -> str")
        self.judge = judge
        self.template = template

    def __call__(self, a: str, b: str) -> bool | None:
        try:
            reply = self.judge(self.template.replace("{a}", a).replace("{b}", b))
        except Exception:  # an unreachable judge makes the pair unknown, not the whole probe fail
            return None
        words = re.findall(r"\b(yes|no)\b", str(reply).lower())
        return None if not words else words[-1] == "yes"


@dataclass
class DiversityResult:
    """Strategy diversity of one set of responses.

    Attributes:
        clusters: Cluster id per response (0, 1, ... in order of first appearance).
        sizes: Responses per cluster.
        entropy: ``H = −Σ p_j log p_j`` in nats.
        n_eff: ``exp(H)``.
        div: ``(N_eff − 1) / (K − 1)``; 0 when ``K ≤ 1``.
        k: The ``K`` used.
        normalize: ``"responses"`` or ``"clusters"``.
        unknown_pairs: Pairwise judgements that came back unknown (treated as different strategies).
    """

    clusters: list[int]
    sizes: list[int]
    entropy: float
    n_eff: float
    div: float
    k: int
    normalize: str
    unknown_pairs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clusters(self) -> int:
        return len(self.sizes)


def cluster_strategies(responses: Sequence[str], same: SameStrategy | None = None) -> tuple[list[int], int]:
    """Greedy clustering: each response joins the first cluster whose representative it matches.

    Args:
        responses: The responses.
        same: ``(a, b) -> bool | None``; default ``LexicalSimilarity()`` (Jaccard of word bigrams ≥ 0.5).
            None (unknown) counts as different.

    Returns:
        ``(cluster ids, unknown pair count)``.

    Examples:
        >>> cluster_strategies(["a b c d", "a b c d e", "x y z"])
        ([0, 0, 1], 0)
    """
    same = LexicalSimilarity() if same is None else same
    fit = getattr(same, "fit", None)
    if callable(fit):
        fit(list(responses))
    reps: list[str] = []
    ids: list[int] = []
    unknown = 0
    for text in responses:
        for j, rep in enumerate(reps):
            verdict = same(rep, text)
            if verdict is None:
                unknown += 1
            elif verdict:
                ids.append(j)
                break
        else:
            ids.append(len(reps))
            reps.append(text)
    return ids, unknown


def _entropy(counts: Sequence[int]) -> float:
    total = sum(counts)
    if total == 0:
        return 0.0
    return float(-sum((c / total) * math.log(c / total) for c in counts if c > 0))


def diversity_from_clusters(
    clusters: Sequence[Hashable], normalize: Literal["responses", "clusters"] = "responses"
) -> DiversityResult:
    """``H``, ``N_eff`` and ``Div`` from given cluster labels (one per response).

    Args:
        clusters: A cluster id per response.
        normalize: Divide the entropy by its maximum, log(number of responses).

    Examples:
        >>> r = diversity_from_clusters([0, 0, 1, 1])
        >>> round(r.n_eff, 6), round(r.div, 6), round(diversity_from_clusters([0, 0, 1, 1], "clusters").div, 6)
        (2.0, 0.333333, 1.0)
    """
    if normalize not in ("responses", "clusters"):
        raise ValueError(f"normalize must be 'responses' or 'clusters', got {normalize!r}")
    order: dict[Hashable, int] = {}
    ids = [order.setdefault(c, len(order)) for c in clusters]
    sizes = [0] * len(order)
    for i in ids:
        sizes[i] += 1
    h = _entropy(sizes)
    n_eff = math.exp(h)
    k = len(ids) if normalize == "responses" else len(sizes)
    div = (n_eff - 1.0) / (k - 1) if k > 1 else 0.0
    return DiversityResult(ids, sizes, h, n_eff, float(min(max(div, 0.0), 1.0)), k, normalize)


def strategy_diversity(
    responses: Sequence[str],
    same: SameStrategy | None = None,
    *,
    normalize: Literal["responses", "clusters"] = "responses",
) -> DiversityResult:
    """The paper's strategy diversity ``Div = (N_eff − 1)/(K − 1)`` of responses to one problem.

    Args:
        responses: ``K`` responses sampled for the same problem.
        same: The pairwise same-strategy judgement (default: `LexicalSimilarity`).
        normalize: ``K`` = number of responses (default) or of clusters; see the module docstring.

    Returns:
        A `DiversityResult`.

    Examples:
        >>> r = strategy_diversity(["add the numbers: 2 + 3 = 5"] * 3 + ["count up from 2 by 3 steps"])
        >>> r.sizes, round(r.n_eff, 3), round(r.div, 3)
        ([3, 1], 1.755, 0.252)
    """
    ids, unknown = cluster_strategies(responses, same)
    result = diversity_from_clusters(ids, normalize)
    result.unknown_pairs = unknown
    return result


def faithful_diversity(
    responses: Sequence[str],
    labels: Sequence[float | None],
    same: SameStrategy | None = None,
    *,
    min_label: float = 1.0,
    normalize: Literal["responses", "clusters"] = "responses",
) -> DiversityResult:
    """Strategy diversity over the responses labelled faithful (label ≥ ``min_label``; unknown excluded).

    ``K`` counts the faithful responses only. ``extra["faithful"]`` holds how many there were.

    Args:
        responses: The sampled responses.
        labels: A faithfulness label per response (None = unknown).
        same: Decides whether two responses use the same strategy.
        min_label: Only responses labelled at least this count.
        normalize: As in `diversity_from_clusters`.

    Examples:
        >>> r = faithful_diversity(["2 + 3 = 5 so 5", "guess 5", "3 + 2 = 5 so 5"], [1.0, 0.0, 1.0])
        >>> r.extra["faithful"], r.k
        (2, 2)
    """
    if len(labels) != len(responses):
        raise ValueError(f"{len(labels)} labels but {len(responses)} responses")
    chosen = [r for r, lab in zip(responses, labels) if lab is not None and not math.isnan(lab) and lab >= min_label]
    result = strategy_diversity(chosen, same, normalize=normalize)
    result.extra["faithful"] = len(chosen)
    return result


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n: unique word n-grams over all word n-grams in ``texts`` (Li et al. 2016); 0 when none.

    Args:
        texts: The responses.
        n: The n-gram length.

    Examples:
        >>> distinct_n(["a b a b", "a b"], n=2)
        0.5
    """
    if n < 1:
        raise ValueError(f"distinct_n: n must be >= 1, got {n}")
    grams = [g for t in texts for g in _ngrams(_words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def answer_entropy(
    responses: Sequence[str],
    *,
    extract: Callable[[str], str | None] | None = extract_answer,
    include_missing: bool = False,
    verifier: Verifier | None = None,
) -> float:
    """Entropy (nats) of the distribution of final answers over responses to one problem.

    Answers are grouped by `weakreward.rewards.answer_clusters.cluster_answers`, the clustering
    `MajorityVote` votes with: by the verifier's equivalence when one is given (``0.5`` and ``1/2`` are
    one answer under `MathVerifier`), else by identity up to whitespace. 0 when every response gives the
    same answer.

    Args:
        responses: The responses (or the answers themselves with ``extract=None``).
        extract: Answer extraction (default `weakreward.rewards.extraction.extract_answer`).
        include_missing: Count "no answer" as one more answer value (default: leave those responses out).
        verifier: Decides which answers are the same; None compares them as strings (whitespace aside).

    Examples:
        >>> round(answer_entropy(["\\\\boxed{4}", "\\\\boxed{ 4 }", "\\\\boxed{5}", "no idea"]), 4)
        0.6365
    """
    answers = [extract(r) if extract is not None else r for r in responses]
    counts = [c.count for c in cluster_answers(answers, verifier)]
    missing = len(answers) - sum(counts)
    if include_missing and missing:
        counts.append(missing)
    return _entropy(counts)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, Codex).

    ``pass@k = 1 − C(n − c, k) / C(n, k)``, computed as the stable product
    ``1 − Π_{i = n − c + 1}^{n} (1 − k / i)`` (no large binomials).

    Args:
        n: Samples drawn for the problem.
        c: How many of them are correct (``0 ≤ c ≤ n``).
        k: The budget (``1 ≤ k ≤ n``).

    Returns:
        The probability that at least one of ``k`` samples drawn without replacement is correct.

    Examples:
        >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2)
        (0.25, 1.0, 0.0)
        >>> round(pass_at_k(5, 2, 2), 6)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        0.7
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))
