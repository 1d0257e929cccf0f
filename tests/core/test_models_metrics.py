import pytest
import torch

from badnets_utils.core import metrics
from badnets_utils.core.metrics import (
    ASR_UNDEFINED,
    classification_report,
    confusion_matrix,
    format_rate,
    per_class_scores,
)
from badnets_utils.core.models import build_model


def test_mnist_and_cifar_shapes_and_logits():
    for name, shape in (("MNIST", (1, 28, 28)), ("CIFAR10", (3, 32, 32)), ("fashion-mnist", (1, 28, 28))):
        m = build_model(name)
        x = torch.randint(0, 256, (4, *shape), dtype=torch.uint8)
        out = m(x)
        assert out.shape == (4, 10)
        assert not torch.allclose(out.sum(1), torch.ones(4))  # logits, not probabilities
        assert m.features(x).shape == (4, 512)
    assert build_model("MNIST").fc1[0].in_features == 512
    assert build_model("CIFAR10").fc1[0].in_features == 800


def test_uint8_and_float_inputs_agree():
    m = build_model("MNIST")
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    assert torch.allclose(m(x), m(x.float() / 255), atol=1e-5)


def test_confusion_matrix_and_report():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(preds, labels, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    s = per_class_scores(cm)
    assert torch.allclose(s["precision"], torch.tensor([0.5, 2 / 3, 1.0], dtype=torch.float64))
    assert torch.allclose(s["recall"], torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64))
    report = classification_report(cm, ["a", "b", "c"])
    assert "accuracy" in report and "0.6667" in report and "macro avg" in report


def test_report_handles_empty_classes():
    cm = confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 3)
    s = per_class_scores(cm)
    assert s["f1"].tolist() == [1.0, 0.0, 0.0]


def test_fashion_mnist_model_normalises_with_its_own_statistics():
    m = build_model("FashionMNIST")
    assert m.mean.flatten().tolist() == pytest.approx([0.2860]) and m.std.flatten().tolist() == pytest.approx([0.3530])


@pytest.mark.parametrize(
    "value, kwargs, text",
    [
        (0.97314, {}, "0.9731"),
        (1.0, {"digits": 2}, "1.00"),
        (0.97314, {"percent": True}, "97.31 %"),
        (float("nan"), {}, "undefined"),
        (float("nan"), {"undefined": ASR_UNDEFINED}, "undefined (no test image outside the target class)"),
        (None, {}, "undefined"),
    ],
)
def test_format_rate(value, kwargs, text):
    assert format_rate(value, **kwargs) == text


def test_dead_accuracy_helper_is_gone():
    assert not hasattr(metrics, "accuracy")
