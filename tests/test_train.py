import pytest
import torch

from badnets_utils.data import ImageData
from badnets_utils.models import build_model
from badnets_utils.poison import attack_test_set, poison_train_set
from badnets_utils.train import (
    compute_loss,
    evaluate,
    fit,
    load_history,
    make_optimizer,
    save_history,
    select_device,
)
from badnets_utils.triggers import make_trigger


def blobs(n=600, seed=0):
    """Ten classes, each a bright bar at its own row: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for k in range(10):
        images[labels == k, :, 2 + 2 * k : 4 + 2 * k, 2:20] = 220
    return ImageData(images, labels, [str(i) for i in range(10)], "blobs")


@pytest.mark.parametrize(
    "loss, optimizer, lr", [("cross", "adam", 5e-3), ("mse", "adam", 1e-3), ("cross", "sgd", 0.05), ("mse", "sgd", 0.5)]
)
def test_fit_learns_clean_task_and_backdoor(loss, optimizer, lr):
    train, test = blobs(), blobs(200, seed=1)
    trig = make_trigger("white", 5)
    ptrain = poison_train_set(train, trig, 0.2, target_label=0, seed=0)
    att = attack_test_set(test, trig, 0)
    history = fit(build_model("MNIST"), ptrain, test, att, epochs=8, batch_size=32, lr=lr, loss=loss,
                  optimizer=optimizer, device="cpu", progress=False)  # fmt: skip
    last = history[-1]
    assert set(last) >= {"train_loss", "clean_acc", "clean_loss", "asr", "asr_loss", "seconds"}
    assert last["clean_acc"] > 0.9 and last["asr"] > 0.9, last
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_losses_differ_and_mse_is_on_softmax():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    p = logits.softmax(1)
    expected = ((p - torch.eye(2)) ** 2).mean()
    assert torch.isclose(compute_loss(logits, y, "mse"), expected)
    assert not torch.isclose(compute_loss(logits, y, "cross"), expected)
    with pytest.raises(ValueError, match="unknown loss 'l1'; allowed: cross, mse"):
        compute_loss(logits, y, "l1")


def test_training_is_reproducible_from_the_seed():
    train = poison_train_set(blobs(200), make_trigger("white", 5), 0.1, 0, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(fit(build_model("MNIST"), train, epochs=1, batch_size=50, device="cpu", seed=7, progress=False))
    assert runs[0][0]["train_loss"] == runs[1][0]["train_loss"]


def test_optimizers_and_devices():
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert isinstance(make_optimizer("sgd", params, 0.1), torch.optim.SGD)
    assert make_optimizer("sgd", params, 0.1).defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop", params, 0.1)
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_evaluate_reports_confusion():
    test = blobs(100)
    r = evaluate(build_model("MNIST"), test)
    assert r["confusion"].sum().item() == 100 and r["preds"].shape == (100,)


def test_history_csv_round_trip(tmp_path):
    rows = [{"epoch": 0, "train_loss": 0.5, "clean_acc": 0.9, "clean_loss": 0.3, "asr": 0.99, "asr_loss": 0.01,
             "seconds": 1.5}]  # fmt: skip
    save_history(rows, tmp_path / "logs" / "h.csv")
    assert load_history(tmp_path / "logs" / "h.csv") == rows
