"""Settings: assignment defaults, parsing, validation with reasons; registries."""

from __future__ import annotations

import pytest

from engine.backbones import get_backbone, list_backbones
from engine.config import ExperimentConfig, parse_value, validate
from engine.errors import UsageError
from engine.experiments import get_experiment, list_experiments
from engine.registry import UnknownName


def test_assignment_defaults() -> None:
    c = get_experiment("simple-cnn").config()
    assert (c.epochs, c.batch_size, c.early_stopping, c.val_split) == (10, 64, True, 0.2)
    f = get_experiment("finetune").config()
    assert (f.finetune_layers, f.finetune_lr, f.finetune_epochs, f.backbone) == (
        10,
        1e-4,
        20,
        "MobileNetV2",
    )
    assert get_experiment("compare").config().backbones == list_backbones()
    assert len(list_backbones()) == 9
    assert {e.name for e in list_experiments()} == {
        "mlp",
        "simple-cnn",
        "transfer",
        "finetune",
        "compare",
        "preprocessing",
    }


def test_config_round_trips_through_a_dict() -> None:
    c = get_experiment("compare").config(epochs=3, data="synthetic")
    assert ExperimentConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("epochs", "5", 5),
        ("early_stopping", "no", False),
        ("subset", "all", None),
        ("backbones", "ResNet50, VGG16", ["ResNet50", "VGG16"]),
        ("mlp_units", "128,64", [128, 64]),
        ("learning_rate", "1e-4", 1e-4),
    ],
)
def test_parse_value(name: str, text: str, value: object) -> None:
    assert parse_value(name, text) == value


def test_parse_value_refuses_with_a_reason() -> None:
    with pytest.raises(UsageError, match="epochs: cannot read 'ten'"):
        parse_value("epochs", "ten")


def test_validate_names_every_problem() -> None:
    bad = ExperimentConfig(
        epochs=0, batch_size=-1, backbone="ResNet9000", head="x", data="ftp:x", weights="w.txt"
    )
    problems = "\n".join(validate(bad))
    for needle in (
        "epochs: 0 is below",
        "batch_size",
        "ResNet9000",
        "head",
        "data: unknown data source",
        "weights",
    ):
        assert needle in problems


def test_registry_lookup_lists_choices() -> None:
    assert get_backbone("resnet50").name == "ResNet50"
    with pytest.raises(UnknownName, match="choose one of: .*MobileNetV2"):
        get_backbone("AlexNet")
