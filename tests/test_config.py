"""Settings: assignment defaults, parsing, validation with reasons (property-tested over\nhostile text and values); registries and their case- and punctuation-blind backbone names."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backbones import get_backbone, list_backbones
from engine.config import (
    ExperimentConfig,
    SettingError,
    check,
    config_from_flags,
    parse_value,
    validate,
)
from engine.errors import UsageError
from engine.experiments import get_experiment, list_experiments
from engine.registry import Registry, UnknownName


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


@pytest.mark.parametrize(
    "spelling", ["MobileNetV2", "mobilenet_v2", "mobilenetv2", "MOBILENET-V2", " mobilenet v2"]
)
def test_backbone_names_in_any_case_and_punctuation(spelling: str) -> None:
    assert get_backbone(spelling.strip()).name == "MobileNetV2"
    config = check(get_experiment("transfer").config(backbone=spelling.strip()))
    assert config.backbone == "MobileNetV2"  # run.json stores the registered name


def test_backbones_list_is_stored_canonical() -> None:
    config = check(get_experiment("compare").config(backbones=["resnet50", "vgg_16", "ResNet50"]))
    assert config.backbones == ["ResNet50", "VGG16", "ResNet50"]
    with pytest.raises(UsageError, match="backbones: unknown 'resnet5'"):
        check(get_experiment("compare").config(backbones=["resnet5"]))


def test_a_loose_registry_refuses_names_it_cannot_tell_apart() -> None:
    reg: Registry[int] = Registry("thing", loose=True)
    reg.add("ResNet50", 1)
    with pytest.raises(ValueError, match="cannot be told apart"):
        reg.add("resnet_50", 2)
    strict: Registry[int] = Registry("thing")
    strict.add("simple-cnn", 1)
    assert "simple_cnn" not in strict and "simple-cnn" in strict


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("learning_rate", "nan", "expected a finite number"),
        ("learning_rate", "inf", "expected a finite number"),
        ("finetune_lr", "-Infinity", "expected a finite number"),
        ("val_split", "1e999", "expected a finite number"),
        ("epochs", "1e3", "expected a whole number"),
        ("mlp_units", "128,x", "expected a whole number"),
        ("early_stopping", "maybe", "expected yes or no"),
    ],
)
def test_parse_value_refuses_non_finite_and_malformed_numbers(
    name: str, text: str, needle: str
) -> None:
    with pytest.raises(SettingError, match=needle) as info:
        parse_value(name, text)
    assert info.value.setting == name and str(info.value).startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"learning_rate": float("nan")}, "learning_rate: nan is not a finite number"),
        ({"val_split": float("inf")}, "val_split: inf is not a finite number"),
        ({"seed": 2**40}, "seed: 1099511627776 is above the maximum"),
        ({"subset": 10**12}, "subset: 1000000000000 is above the maximum"),
        ({"finetune_layers": 10**6}, "finetune_layers: 1000000 is above the maximum"),
        ({"mlp_units": [64, 0]}, "mlp_units: 0 is below the minimum 1"),
        ({"mlp_units": [10**7]}, "mlp_units: 10000000 is above the maximum"),
        ({"epochs": "10"}, "epochs: '10' is not a whole number"),
        ({"epochs": True}, "epochs: True is not a whole number"),
        ({"early_stopping": "yes"}, "early_stopping: 'yes' is not yes or no"),
        ({"backbones": "ResNet50"}, "backbones: 'ResNet50' is not a list of names"),
        ({"backbone": None}, "backbone: a value is required"),
    ],
)
def test_validate_refuses_non_finite_out_of_range_and_mistyped_values(
    changes: dict[str, object], needle: str
) -> None:
    problems = validate(ExperimentConfig().replace(**changes))
    assert needle in problems[0] and len(problems) == 1, problems


# ---------------------------------------------------------------------- property tests
_FIELDS = [f.name for f in dataclasses.fields(ExperimentConfig)]

# Text a person (or a script) might type for any setting: numbers of every shape, the
# non-finite spellings, names, separators, and arbitrary text.
_TEXT = st.one_of(
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e309",
            "-0",
            "0",
            "1",
            "64",
            "1e-4",
            "0.2",
            "yes",
            "none",
            "all",
            "",
            " ",
            ",",
            "1,2",
            "MobileNetV2",
            "mobilenet_v2",
            "synthetic",
            "ftp:x",
            "folder:",
            "9" * 50,
            "-1",
            "\n",
            "a\nb",
        ]
    ),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=30),
)

# Any Python value a run.json or a form might hand over for a setting.
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(-5, 10**6), st.text(max_size=8)), max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(_FIELDS), text=_TEXT)
def test_parse_value_either_reads_or_names_the_setting_in_one_line(name: str, text: str) -> None:
    try:
        value = parse_value(name, text)
    except SettingError as exc:
        assert exc.setting == name and str(exc).startswith(f"{name}: ")
        assert "\n" not in str(exc) and len(str(exc)) < 200
        return
    if isinstance(value, float):
        assert math.isfinite(value)


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _VALUE, max_size=4))
def test_validate_never_raises_and_gives_one_line_per_problem(
    changes: dict[str, object],
) -> None:
    problems = validate(ExperimentConfig().replace(**changes))
    for problem in problems:
        assert "\n" not in problem and problem.split(":")[0] in _FIELDS, problem
    if not problems:  # a config that passes is one the engine can use as is
        config = check(ExperimentConfig().replace(**changes))
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if isinstance(value, float):
                assert math.isfinite(value)


def test_config_from_flags_names_every_flag_that_does_not_fit() -> None:
    spec = get_experiment("simple-cnn")
    given = {"model": "mlp", "backbone": "ResNet50", "finetune_layers": "5", "epochs": "nan"}
    with pytest.raises(UsageError) as info:
        config_from_flags(spec, given)
    message = str(info.value)
    assert "--model: experiment simple-cnn always uses model 'simple_cnn'" in message
    assert "--backbone, --finetune-layers do not apply to experiment simple-cnn" in message
    assert "--epochs: cannot read 'nan' (expected a whole number)" in message
    assert "\n" not in message
    ok = config_from_flags(
        get_experiment("compare"), {"backbones": "vgg16,RESNET50", "resize": "40"}
    )
    assert (ok.backbones, ok.resize, ok.model) == (["VGG16", "ResNet50"], 40, "transfer")
