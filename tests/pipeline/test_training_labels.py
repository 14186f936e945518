"""Learning from clerks: reviewed documents weighted into training."""

from __future__ import annotations

import pytest

from digitizer.pipeline import training
from digitizer.pipeline.classify import Classifier
from digitizer.pipeline.training import LabelledExample, TrainParams, train
from fixtures import generator as g

SMALL = TrainParams(max_char_features=20_000, max_word_features=5_000)

#: A residence confirmation in a wording the generator never produces.
NEW_WORDING = """CÔNG AN XÃ YÊN THẾ
CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Độc lập - Tự do - Hạnh phúc
GIẤY XÁC NHẬN NƠI CƯ TRÚ
Công an xã Yên Thế xác nhận ông/bà: {name}
Hiện đang cư trú tại: thôn Đông, xã Yên Thế, tỉnh Bắc Ninh
Thời hạn của giấy xác nhận: đến ngày 09/12/2025
TRƯỞNG CÔNG AN XÃ"""


@pytest.fixture(scope="module")
def base() -> list[LabelledExample]:
    if not g.FONTS:
        pytest.skip("no font covering Vietnamese is installed")
    return training.generated_examples(8, seed=70)


def test_a_weighted_correction_counts_more(base: list[LabelledExample]) -> None:
    """GIVEN one corrected document of a new wording WHEN it is weighted THEN the model is
    surer of its type for another document of that wording than with weight 1, and the
    weight is part of the version."""
    label = NEW_WORDING.format(name="TRẦN VĂN AN")
    unseen = NEW_WORDING.format(name="LÊ THỊ HOA")
    before = Classifier(train(base, SMALL)).classify(unseen)
    assert before.type != "residence_confirmation"
    plain = train([*base, LabelledExample(label, "residence_confirmation", source="clerk")], SMALL)
    weighted = train(
        [*base, LabelledExample(label, "residence_confirmation", source="clerk", weight=5.0)],
        SMALL,
    )
    p_plain = plain.predict_proba([unseen])[0]["residence_confirmation"]
    p_weighted = weighted.predict_proba([unseen])[0]["residence_confirmation"]
    assert p_weighted > p_plain
    assert Classifier(weighted).classify(unseen).type == "residence_confirmation"
    assert weighted.version != plain.version


@pytest.mark.smoke
def test_weights_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LabelledExample("x", "decision", weight=0)
