"""The learned half of classification: train, version, save and load a text classifier.

A model is scikit-learn: TF-IDF over word 1-2 grams and over character 2-5 grams (``char_wb``)
of diacritic-aware text (NFC, lower case, one tone-mark placement, digits folded to 0), then a
multinomial logistic regression, whose probabilities are what :mod:`.classify` combines with
its rules. Character n-grams carry the model through OCR slips (a dropped diacritic changes one
n-gram of many); the word bigrams carry phrases ("khai sinh", "kính gửi").

Training data are :class:`LabelledExample` s: generated documents (:func:`train_default`) and
clerks' corrections (text, the right type, the corrected fields). Each text is also added with
simulated OCR noise (diacritics lost, 0/O and 1/l swapped, lines dropped), because the model
meets OCR output, not clean text.

Models are saved as a folder per version (``ROOT/VERSION/model.joblib`` + ``meta.json``);
``ROOT/current`` names the version in use. The version id is the training date plus a hash of
the training data and parameters. A model pickled by another major version of scikit-learn is
refused with :class:`ModelVersionError` before anything is unpickled. Load models only from
folders this service wrote: joblib files are pickles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# scikit-learn (with scipy and pandas, seconds to import and ~100 MiB) is imported where a
# model is trained or loaded, not by every process that only needs this module's types
# (the API's review routes).
if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

from digitizer.doctypes import DOC_TYPES
from digitizer.pipeline.issuers import fold, normalize_tone_marks

log = logging.getLogger(__name__)

__all__ = [
    "DOC_TYPES",
    "LabelledExample",
    "Model",
    "ModelError",
    "ModelVersionError",
    "TrainParams",
    "generated_examples",
    "load_model",
    "load_or_train_default",
    "model_text",
    "ocr_noise",
    "save_model",
    "train",
    "train_default",
]


MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
CURRENT_FILE = "current"


class ModelError(Exception):
    """A model folder is missing, incomplete or corrupt."""


class ModelVersionError(ModelError):
    """The model was trained with an incompatible scikit-learn (another major version)."""


@dataclass(frozen=True)
class LabelledExample:
    """One labelled document: what the classifier saw and what it should have said.

    Attributes:
        text: the document text (OCR output or text layer), pages separated by form feeds.
        doc_type: the correct type code.
        fields: the correct field values (clerk-corrected), name -> value; kept with the
            example for extraction evaluation and future learned extractors.
        source: ``"generated"`` or ``"clerk"``.
        document_id: the reviewed document, for clerk corrections.
        weight: how much the example counts in training (a clerk's correction of a wording
            the generator never produced is one document against hundreds of generated ones:
            it is weighted so that it is learnt).
    """

    text: str
    doc_type: str
    fields: dict[str, str] = field(default_factory=dict)
    source: str = "generated"
    document_id: str | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.doc_type not in DOC_TYPES:
            raise ValueError(f"unknown document type {self.doc_type!r}")
        if not self.weight > 0:
            raise ValueError("an example's weight must be positive")


@dataclass(frozen=True)
class TrainParams:
    """Training settings (part of the version hash)."""

    #: Inverse regularisation of the logistic regression.
    c: float = 8.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    max_word_features: int = 30_000
    max_char_features: int = 80_000
    #: Noisy copies added per example (simulated OCR); 0 disables augmentation.
    noisy_copies: int = 1
    #: Character error rate of the simulated OCR noise.
    noise_rate: float = 0.04
    seed: int = 0


_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"[ \t]+")


def model_text(text: str) -> str:
    """What the model sees: NFC, lower case, traditional tone marks, digits as 0.

    Numbers identify a document, not its type; folding them keeps the vocabulary about
    wording ("số: 000/qđ-ubnd").
    """
    text = normalize_tone_marks(unicodedata.normalize("NFC", text)).lower()
    text = _DIGITS.sub("0", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines() if line.strip())


_CONFUSIONS = {
    "0": "O",
    "O": "0",
    "o": "0",
    "1": "l",
    "l": "1",
    "I": "1",
    "5": "S",
    "8": "B",
    "m": "rn",
    "đ": "d",
    "Đ": "D",
    "ư": "u",
    "ơ": "o",
}


def ocr_noise(text: str, rng: random.Random, rate: float = 0.04) -> str:
    """Simulated OCR errors: diacritics lost or changed, look-alike characters, dropped lines.

    Args:
        text: clean text.
        rng: the randomness (seeded by the caller).
        rate: probability that a character is changed.
    """
    out_lines = []
    for line in text.splitlines():
        if rng.random() < 0.04:
            continue  # a line lost to a stamp or a fold
        chars = []
        for ch in line:
            roll = rng.random()
            if roll < rate * 0.5 and ord(ch) > 127:
                chars.append(fold(ch) if ch.islower() else fold(ch).upper())
            elif roll < rate * 0.8 and ch in _CONFUSIONS:
                chars.append(_CONFUSIONS[ch])
            elif roll < rate * 0.9:
                continue
            elif roll < rate:
                chars.append(ch + rng.choice(" .,'"))
            else:
                chars.append(ch)
        out_lines.append("".join(chars))
    return "\n".join(out_lines)


def _pipeline(params: TrainParams) -> Pipeline:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=params.word_ngrams,
                    token_pattern=r"(?u)\b\w[\w/-]*\b",
                    sublinear_tf=True,
                    min_df=2,
                    max_features=params.max_word_features,
                    lowercase=False,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=params.char_ngrams,
                    sublinear_tf=True,
                    min_df=2,
                    max_features=params.max_char_features,
                    lowercase=False,
                ),
            ),
        ]
    )
    classifier = LogisticRegression(C=params.c, max_iter=2000, random_state=params.seed)
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass
class Model:
    """A trained classifier with its version and provenance.

    Attributes:
        pipeline: the scikit-learn pipeline (text in, class probabilities out).
        labels: the type codes, in the pipeline's class order.
        version: ``YYYYMMDD-<12 hex>``: training date and hash of data and parameters.
        meta: provenance written to ``meta.json`` (sklearn version, counts, parameters).
    """

    pipeline: Pipeline
    labels: list[str]
    version: str
    meta: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probability of every type for each text (types never seen in training get 0)."""
        prepared = [model_text(t) for t in texts]
        rows = self.pipeline.predict_proba(prepared)
        out = []
        for row in rows:
            probs = dict.fromkeys(DOC_TYPES, 0.0)
            probs.update({label: float(p) for label, p in zip(self.labels, row, strict=True)})
            out.append(probs)
        return out


def train(examples: Iterable[LabelledExample], params: TrainParams | None = None) -> Model:
    """Train a model from labelled examples (generated documents and clerk corrections).

    Raises:
        ValueError: fewer than two types among the examples.
    """
    params = params or TrainParams()
    items = list(examples)
    counts = Counter(e.doc_type for e in items)
    if len(counts) < 2:
        raise ValueError("training needs examples of at least two document types")
    rng = random.Random(params.seed)
    texts: list[str] = []
    labels: list[str] = []
    weights: list[float] = []
    digest = hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode())
    for example in items:
        digest.update(example.doc_type.encode() + b"\0" + example.text.encode() + b"\0")
        if example.weight != 1.0:
            digest.update(f"weight={example.weight}\0".encode())
        texts.append(model_text(example.text))
        labels.append(example.doc_type)
        weights.append(example.weight)
        for _ in range(params.noisy_copies):
            texts.append(model_text(ocr_noise(example.text, rng, params.noise_rate)))
            labels.append(example.doc_type)
            weights.append(example.weight)
    import sklearn

    pipeline = _pipeline(params)
    pipeline.fit(texts, labels, classifier__sample_weight=weights)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%d}-{digest.hexdigest()[:12]}"
    meta = {
        "version": version,
        "created": now.isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "examples": len(items),
        "per_type": dict(sorted(counts.items())),
        "sources": dict(Counter(e.source for e in items)),
        "params": asdict(params),
    }
    classes = [str(c) for c in pipeline.classes_]
    log.info("trained model %s on %d examples", version, len(items))
    return Model(pipeline=pipeline, labels=classes, version=version, meta=meta)


def save_model(model: Model, root: Path, *, make_current: bool = True) -> Path:
    """Write ``root/<version>/`` (model and ``meta.json``) and point ``root/current`` at it.

    Files are written to a temporary folder and renamed, so a reader never sees half a model.

    Returns:
        The version folder.
    """
    import joblib

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / model.version
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        model_path = staging / MODEL_FILE
        joblib.dump({"pipeline": model.pipeline, "labels": model.labels}, model_path, compress=3)
        meta = dict(model.meta)
        meta["sha256"] = hashlib.sha256(model_path.read_bytes()).hexdigest()
        (staging / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        os.replace(staging, target)
    if make_current:
        pointer = root / f".{CURRENT_FILE}.tmp"
        pointer.write_text(model.version + "\n")
        os.replace(pointer, root / CURRENT_FILE)
    return target


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def load_model(path: Path) -> Model:
    """Load a model from its version folder, or from a root folder's ``current`` version.

    Raises:
        ModelError: no model there, or its file does not match its recorded hash.
        ModelVersionError: trained with another major scikit-learn version (retrain it).
    """
    path = Path(path)
    if (path / CURRENT_FILE).is_file() and not (path / META_FILE).is_file():
        path = path / (path / CURRENT_FILE).read_text().strip()
    meta_path, model_path = path / META_FILE, path / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise ModelError(f"no classifier model in {path}")
    # Imported only when there is a model to load: scikit-learn takes ~2 s of CPU to
    # import, which a worker without a model would otherwise pay on its first document.
    import joblib
    import sklearn

    meta = json.loads(meta_path.read_text())
    trained_with = str(meta.get("sklearn_version", "unknown"))
    if _major(trained_with) != _major(sklearn.__version__):
        raise ModelVersionError(
            f"model {meta.get('version')} was trained with scikit-learn {trained_with}; this "
            f"installation has {sklearn.__version__} (another major version): retrain it"
        )
    if trained_with != sklearn.__version__:
        log.warning(
            "model %s trained with scikit-learn %s, running %s",
            meta.get("version"),
            trained_with,
            sklearn.__version__,
        )
    data = model_path.read_bytes()
    if meta.get("sha256") and hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ModelError(f"{model_path} does not match the hash in {META_FILE}")
    payload = joblib.load(model_path)
    return Model(
        pipeline=payload["pipeline"],
        labels=list(payload["labels"]),
        version=str(meta["version"]),
        meta=meta,
    )


def generated_examples(
    per_type: int = 60,
    *,
    split: str = "train",
    seed: int = 0,
    dpi: int = 100,
) -> list[LabelledExample]:
    """Labelled examples from the fixture generator (clean text, both reading orders).

    Each document gives its text as the generator lays it out (columns one after the other)
    and, for half of them, row by row as Tesseract reads two-column headers.
    """
    from fixtures import generator  # the generator is a test-and-training fixture

    out: list[LabelledExample] = []
    for type_index, doc_type in enumerate(DOC_TYPES):
        if not generator.document_variants(split, doc_type):
            continue
        for i in range(per_type):
            doc_seed = seed + 100_000 * type_index + i
            doc = generator.generate_document(doc_seed, doc_type, split=split, dpi=dpi)
            if i % 2:
                pages = [generator.row_major_text(p.lines) for p in doc.pages]
            else:
                pages = [p.text for p in doc.pages]
            out.append(LabelledExample("\n\f\n".join(pages), doc.doc_type, dict(doc.fields)))
    return out


def train_default(
    out_dir: Path | None = None,
    *,
    per_type: int = 60,
    params: TrainParams | None = None,
    seed: int = 0,
    extra: Sequence[LabelledExample] = (),
) -> Model:
    """Train from generated documents of the training split plus ``extra`` examples (clerks'
    reviewed documents); save when ``out_dir`` is given."""
    model = train([*generated_examples(per_type, seed=seed), *extra], params)
    model.meta["trained_from"] = f"fixtures.generator train split, {per_type} per type"
    if extra:
        model.meta["reviewed_labels"] = len(extra)
        model.meta["reviewed_weight"] = round(sum(e.weight for e in extra), 3)
    if out_dir is not None:
        save_model(model, Path(out_dir))
    return model


def load_or_train_default(root: Path) -> Model:
    """The current model under ``root``; trains and saves the default one when there is none
    or it was made by an incompatible scikit-learn."""
    try:
        return load_model(root)
    except ModelVersionError as exc:
        log.warning("%s", exc)
    except ModelError:
        pass
    return train_default(root)
