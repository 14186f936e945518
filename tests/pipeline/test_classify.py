"""Classification: rules for strong signals, the learned model, look-alikes, thresholds,
and training (versioned save/load, clerk corrections)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sklearn

from digitizer.pipeline import training
from digitizer.pipeline.classify import (
    Classifier,
    ClassifyConfig,
    as_pages,
    classify,
    find_rule,
)
from digitizer.pipeline.training import (
    DOC_TYPES,
    LabelledExample,
    Model,
    ModelError,
    ModelVersionError,
    TrainParams,
    load_model,
    save_model,
    train,
)
from fixtures import generator as g

needs_fonts = pytest.mark.skipif(not g.FONTS, reason="no font covering Vietnamese is installed")
SMALL = TrainParams(max_char_features=20_000, max_word_features=5_000)


@pytest.fixture(scope="module")
def model() -> Model:
    """A small model: 8 generated training documents per type (a few seconds)."""
    if not g.FONTS:
        pytest.skip("no font covering Vietnamese is installed")
    return train(training.generated_examples(8, seed=40), SMALL)


def _text(doc: g.GeneratedDocument) -> str:
    return "\n\f\n".join(page.text for page in doc.pages)


HEADER = "ỦY BAN NHÂN DÂN\nXÃ AN PHÚ\nSố: 12/UBND\nCỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\n"


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("title", "doc_type"),
    [
        ("GIẤY KHAI SINH", "birth_certificate"),
        ("TRÍCH LỤC KHAI SINH", "birth_certificate"),
        ("TRÍCH LỤC KHAI SlNH", "birth_certificate"),  # OCR: l for I
        ("TRICH LUC KHAI SINH", "birth_certificate"),  # diacritics lost
        ("GIẤY CHỨNG NHẬN KẾT HÔN", "marriage_certificate"),
        ("TRÍCH LỤC KHAI TỬ", "death_certificate"),
        ("XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ", "residence_confirmation"),
        ("GIẤY CHỨNG NHẬN QUYỀN SỬ DỤNG ĐẤT", "land_use_certificate"),
        ("BẰNG TỐT NGHIỆP TRUNG HỌC PHỔ THÔNG", "diploma"),
        ("QUYẾT ĐỊNH", "decision"),
        ("GIẤY CHỨNG NHẬN ĐĂNG KÝ DOANH NGHIỆP", "business_registration"),
        ("CĂN CƯỚC", "citizen_id"),
        ("CĂN CƯỚC CÔNG DÂN", "citizen_id"),
        ("TỜ KHAI ĐĂNG KÝ KHAI SINH", "other"),
    ],
)
def test_title_rules(title: str, doc_type: str) -> None:
    rule = find_rule(as_pages(f"{HEADER}{title}\nHọ và tên: NGUYỄN VĂN AN\n"))
    assert rule is not None and rule.doc_type == doc_type, rule
    assert rule.rule.startswith("title")


@pytest.mark.smoke
def test_two_line_titles_letters_and_machine_readable_zone() -> None:
    residence = find_rule(as_pages(f"{HEADER}XÁC NHẬN\nThông tin về cư trú\n"))
    assert residence is not None and residence.doc_type == "residence_confirmation"
    letter = find_rule(as_pages(f"{HEADER}V/v rà soát dữ liệu dân cư\nKính gửi: Các phường.\n"))
    assert letter is not None and letter.doc_type == "official_letter"
    back = find_rule(as_pages("Nơi cư trú/Place of residence:\nIDVNM0960123452001096012345<<5"))
    assert back is not None and back.rule == "mrz"


@pytest.mark.smoke
def test_a_quoted_title_is_not_a_title() -> None:
    """A letter quoting a birth certificate in a sentence is not a birth certificate."""
    text = (
        f"{HEADER}Kính gửi: Ủy ban nhân dân xã Bình Minh.\n"
        'Công dân có nộp bản sao "GIẤY KHAI SINH" số 45, quyển số 02/1998.\n'
    )
    rule = find_rule(as_pages(text))
    assert rule is None or rule.doc_type != "birth_certificate"
    # Nor is a title below the title zone (a quotation at the bottom of a long page).
    body = "\n".join(f"Dòng nội dung số {i} của văn bản." for i in range(40))
    assert find_rule(as_pages(f"{HEADER}{body}\nGIẤY KHAI SINH\n")) is None


@pytest.mark.smoke
def test_rules_only_classifier() -> None:
    result = classify(f"{HEADER}TRÍCH LỤC KHAI SINH\n")
    assert result.predicted == "birth_certificate"
    assert result.model_version is None
    unsure = classify("một trang không có tiêu đề")
    assert unsure.type == "other" and unsure.needs_review and unsure.confidence < 0.2


@needs_fonts
@pytest.mark.parametrize(
    ("template", "wording", "doc_type"),
    [
        ("cong-van-xac-minh", 0, "official_letter"),  # letter quoting a birth certificate
        ("cong-van-xac-minh", 1, "official_letter"),  # ... with "GIẤY KHAI SINH" in capitals
        ("quyet-dinh-cap-gcn", 0, "decision"),  # decision granting a land-use certificate
        ("quyet-dinh-cap-gcn", 1, "decision"),
        ("to-khai", 0, "other"),  # blank birth registration form
        ("to-khai", 2, "other"),  # blank death registration form (held out)
        ("to-khai", 3, "other"),  # blank ID card application
    ],
)
def test_look_alikes(model: Model, template: str, wording: int, doc_type: str) -> None:
    doc = g.generate_document(77, template=template, wording=wording, dpi=100)
    result = Classifier(model).classify(_text(doc))
    assert result.type == doc_type, result.to_dict()
    assert not result.needs_review


@needs_fonts
def test_every_type_on_held_out_wordings(model: Model) -> None:
    """GIVEN held-out templates and wordings the small model never saw WHEN classified THEN the
    type is right and confident (rules and model agree)."""
    classifier = Classifier(model)
    for doc_type in DOC_TYPES:
        for template, wording in g.document_variants("heldout", doc_type):
            doc = g.generate_document(91, template=template, wording=wording, split="heldout",
                                      dpi=100)  # fmt: skip
            result = classifier.classify(_text(doc))
            assert result.type == doc_type, (template, wording, result.to_dict())


@needs_fonts
def test_below_threshold_is_other_never_the_dominant_class(model: Model) -> None:
    doc = g.generate_document(5, "decision", dpi=100)
    strict = Classifier(model, ClassifyConfig(threshold=0.9999, per_type={}))
    result = strict.classify(_text(doc))
    assert result.predicted == "decision"
    assert result.type == "other"
    assert result.needs_review
    assert result.confidence < 0.5
    assert result.confidence == pytest.approx(result.scores["other"])
    as_json = result.to_dict()
    assert as_json["type"] == "other" and as_json["predicted"] == "decision"


@needs_fonts
def test_rule_against_a_doubtful_model_lowers_confidence(model: Model) -> None:
    """A title the model strongly disagrees with is not trusted blindly."""
    letter = _text(g.generate_document(8, "official_letter", dpi=100))
    agreeing = Classifier(model).classify(letter)
    assert agreeing.rule is not None and agreeing.rule.doc_type == "official_letter"
    # A stray "QUYẾT ĐỊNH" line on top of a letter: the rule points one way, the model the other.
    mixed = Classifier(model).classify("QUYẾT ĐỊNH\n" + letter)
    assert mixed.rule is not None and mixed.rule.doc_type == "decision"
    assert mixed.scores["decision"] < agreeing.confidence


@needs_fonts
def test_model_save_load_and_versions(model: Model, tmp_path: Path) -> None:
    folder = save_model(model, tmp_path)
    assert folder == tmp_path / model.version
    assert (tmp_path / "current").read_text().strip() == model.version
    assert len(model.version.split("-")[1]) == 12 and model.version[:8].isdigit()
    loaded = load_model(tmp_path)
    text = _text(g.generate_document(9, "diploma", dpi=100))
    assert loaded.version == model.version
    assert loaded.predict_proba([text]) == model.predict_proba([text])
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["sklearn_version"] == sklearn.__version__
    assert meta["per_type"]["diploma"] == 8


@needs_fonts
def test_model_from_another_sklearn_major_is_refused(model: Model, tmp_path: Path) -> None:
    folder = save_model(model, tmp_path)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    major = int(sklearn.__version__.split(".")[0])
    meta["sklearn_version"] = f"{major + 1}.0.0"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelVersionError, match="another major version"):
        load_model(folder)


@needs_fonts
def test_corrupt_or_missing_model(model: Model, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no classifier model"):
        load_model(tmp_path)
    folder = save_model(model, tmp_path)
    (folder / "model.joblib").write_bytes(b"truncated")
    with pytest.raises(ModelError, match="does not match"):
        load_model(folder)


@needs_fonts
def test_clerk_corrections_teach_the_model() -> None:
    """GIVEN a kind of paper the model never saw WHEN clerks label a few as ``other`` and the
    model is retrained THEN the next one is classified ``other``."""
    base = training.generated_examples(6, seed=300)
    licence = (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nGIẤY PHÉP LÁI XE\nDRIVER'S LICENSE\n"
        "Họ tên/Full name: {name}\nNgày sinh/Date of Birth: 0{d}/05/1990\n"
        "Hạng/Class: B2\nCó giá trị đến/Expires: 0{d}/05/2030\n"
    )
    names = ["NGUYỄN VĂN AN", "TRẦN THỊ BÌNH", "LÊ VĂN CƯỜNG", "PHẠM THU HÀ", "VŨ MINH ĐỨC"]
    before = train(base, SMALL)
    corrections = [
        LabelledExample(licence.format(name=n, d=i + 1), "other", source="clerk")
        for i, n in enumerate(names[:4])
    ]
    after = train([*base, *corrections, *corrections], SMALL)
    unseen = licence.format(name=names[4], d=7)
    assert Classifier(after).classify(unseen).predicted == "other"
    assert after.version != before.version
    assert after.meta["sources"] == {"generated": len(base), "clerk": 8}
    assert after.predict_proba([unseen])[0]["other"] > before.predict_proba([unseen])[0]["other"]


@pytest.mark.smoke
def test_labelled_example_and_train_validation() -> None:
    with pytest.raises(ValueError, match="unknown document type"):
        LabelledExample("x", "passport")
    with pytest.raises(ValueError, match="at least two"):
        train([LabelledExample("a b c", "decision"), LabelledExample("d e f", "decision")])


@pytest.mark.smoke
def test_model_text_folds_numbers_and_tone_marks() -> None:
    assert training.model_text("Số: 123/QĐ-UBND\n\n  Khánh  Hoà ") == "số: 000/qđ-ubnd\nkhánh hòa"
