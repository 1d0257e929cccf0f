"""What a sweep's CSV keys a run on: what determines its result. The trigger by its pixels as stamped (two files of
one name are two triggers), the rate exactly (0.001 and 0.0009999996 are two runs); an older CSV without the
``trigger_sha256`` column still reads, its built-in triggers known by name; and a column the user added is kept."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from badnets_utils.core.config import Attack, Budget
from badnets_utils.core.triggers import make_trigger, save_trigger
from badnets_utils.studies.sweep import (
    FIELDS,
    KEY_FIELDS,
    _varying,
    _words,
    by_setting,
    read_results,
    result_row,
    run_key,
    run_sweep,
    write_results,
)

BUDGET = Budget(epochs=1, train_limit=100, test_limit=50, device="cpu")
SHIPPED = Path(__file__).resolve().parents[2] / "results"


def _key(attack: Attack, budget: Budget = Budget()) -> dict:
    return dict(zip(KEY_FIELDS, run_key(attack, budget), strict=True))


def test_rates_and_other_settings_are_keyed_exactly(tmp_path):
    near = Attack(rate=0.0009999996)
    assert _key(near)["poisoning_rate"] == "0.0009999996" and _key(Attack(rate=0.001))["poisoning_rate"] == "0.001"
    assert run_key(near, BUDGET) != run_key(Attack(rate=0.001), BUDGET)
    assert run_key(Attack(), Budget(lr=0.0020000001)) != run_key(Attack(), Budget(lr=0.002))
    assert run_key(Attack(alpha=0.3333333), BUDGET) != run_key(Attack(alpha=0.33333333), BUDGET)
    row = {**near.describe(), **BUDGET.describe(), "trigger_sha256": _key(near)["trigger_sha256"], "tca": 0.9,
           "asr": 0.5, "poisoned": 0, "train_size": 100, "test_size": 50, "seconds": 1.0}  # fmt: skip
    (back,) = read_results(write_results([row], tmp_path / "s.csv"))
    assert back["poisoning_rate"] == 0.0009999996  # written exactly, read back exactly
    assert "0.0009999996" in (tmp_path / "s.csv").read_text() and ",1," in (tmp_path / "s.csv").read_text()  # alpha


def test_a_tensor_trigger_and_a_mask_are_keyed_by_their_content():
    white, checker = make_trigger("white", 3), make_trigger("checkerboard", 3)
    assert _key(Attack(trigger=white))["trigger"] == _key(Attack(trigger=checker))["trigger"] == "custom"
    assert run_key(Attack(trigger=white), BUDGET) != run_key(Attack(trigger=checker), BUDGET)
    assert run_key(Attack(trigger=white), BUDGET) == run_key(Attack(trigger=white.clone()), BUDGET)
    half, full = torch.full((3, 3), 0.5), torch.ones(3, 3)
    assert run_key(Attack(trigger=white, mask=half), BUDGET) != run_key(Attack(trigger=white, mask=full), BUDGET)
    # the built-in kind and its shipped PNG stamp the same pixels: one key
    shipped = Attack(trigger=Path(__file__).resolve().parents[2] / "triggers" / "trigger_white.png")
    assert run_key(shipped, BUDGET) == run_key(Attack(trigger="white"), BUDGET)


def test_an_older_csv_is_read_and_its_built_in_triggers_are_known_by_name(tmp_path):
    rows = read_results(SHIPPED / "asr_vs_rate_MNIST.csv")  # written before the column existed; read by notebook 04
    assert len(rows) == 30 and "trigger_sha256" not in (SHIPPED / "asr_vs_rate_MNIST.csv").read_text().splitlines()[0]
    first = rows[0]
    attack = Attack(trigger=first["trigger"], trigger_size=first["trigger_size"], target=first["trigger_label"],
                    rate=first["poisoning_rate"], mode=first["poison_mode"], seed=first["seed"])  # fmt: skip
    budget = Budget(epochs=first["epochs"], batch_size=first["batch_size"], lr=first["lr"])
    assert first["trigger_sha256"] == _key(attack)["trigger_sha256"]
    assert run_key(attack, budget) in {tuple(_key_of(r)) for r in rows}  # the same run: reused by a sweep
    for name in ("paper_single_target.csv", "paper_poison_count.csv"):  # notebooks 06 and 08
        assert all(r["trigger_sha256"] for r in read_results(SHIPPED / name))
    # a file trigger in an older CSV is unknown: read, but never the key of a run
    old = tmp_path / "old.csv"
    old_fields = [f for f in FIELDS if f != "trigger_sha256"]
    with open(old, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old_fields)
        writer.writeheader()
        writer.writerow({**{k: "" if first[k] is None else first[k] for k in old_fields}, "trigger": "mine"})
    (unknown,) = read_results(old)
    assert unknown["trigger_sha256"] is None and unknown["asr"] == first["asr"]
    png = tmp_path / "mine.png"
    save_trigger(make_trigger("white", 5), png)
    assert run_key(attack.replace(trigger=png), budget) != tuple(_key_of(unknown))


def _key_of(row: dict) -> list[str]:
    from badnets_utils.studies.sweep import _row_key

    return list(_row_key(row))


def test_a_tensor_result_row_carries_the_digest_of_what_was_stamped():
    from types import SimpleNamespace

    train = type("Train", (list,), {})(range(110))
    train.poison_indices = list(range(10))
    trigger = make_trigger("checkerboard", 5)
    setup = SimpleNamespace(train=train, train_size=100, test=list(range(50)), trigger=trigger)
    result = SimpleNamespace(attack=Attack(trigger=trigger), budget=BUDGET, setup=setup, tca=0.9, asr=0.5, seconds=1.0)
    assert result_row(result)["trigger_sha256"] == _key(Attack(trigger=trigger))["trigger_sha256"]


def test_two_trigger_files_of_one_name_are_two_runs_and_a_users_column_is_kept(mnist_root, tmp_path, capsys):
    first, second = tmp_path / "a" / "t.png", tmp_path / "b" / "t.png"
    first.parent.mkdir()
    second.parent.mkdir()
    save_trigger(make_trigger("white", 3), first)
    save_trigger(make_trigger("checkerboard", 3), second)
    path = tmp_path / "s.csv"
    run_sweep([Attack(trigger=first, trigger_size=3)], BUDGET, path, mnist_root, workers=1)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",note", lines[1] + ",my first run", ""]))  # a column of the user's own
    capsys.readouterr()
    attacks = [Attack(trigger=first, trigger_size=3), Attack(trigger=second, trigger_size=3)]
    rows = run_sweep(attacks, BUDGET, path, mnist_root, workers=1)
    assert capsys.readouterr().out.count("from the CSV") == 1  # the second file trained: its pixels differ
    assert rows[0]["trigger"] == rows[1]["trigger"] == "t" and rows[0]["trigger_sha256"] != rows[1]["trigger_sha256"]
    groups = by_setting(rows)  # the sweep's report and plot tell the two apart
    titles = {", ".join(_words(group[0], _varying(groups), shared=False)) for group in groups.values()}
    assert len(titles) == 2 and all("t 3×3 (sha256 " in title for title in titles), titles
    back = read_results(path)
    assert [r["note"] for r in back] == ["my first run", None]  # kept, empty in the new row
    assert path.read_text().splitlines()[0].endswith(",note") and len(back) == 2
    with pytest.raises(ValueError, match="appears twice"):  # the user's column is still checked like any other
        path.write_text(path.read_text().replace(",note", ",tca", 1))
        read_results(path)
