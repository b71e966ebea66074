"""The TUI-free lessons: the model's own numbers, emphasis spans, Spanish, and the runs' lessons."""

from __future__ import annotations

from typing import Any

from engine.i18n import language
from engine.records import Metrics, ModelInfo, Phase, RunRecord
from engine.report.model_lessons import Lesson, Span, model_lessons


def _row(name: str, kind: str, out: list[Any], params: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "output_shape": out, "params": params, **extra}


def simple_cnn_summary() -> dict[str, Any]:
    """The layer table of the assignment's simple CNN, as summary.json holds it."""
    conv = {"kernel_size": [3, 3], "strides": [1, 1], "use_bias": True}
    pool = {"pool_size": [2, 2], "strides": [2, 2]}
    layers = [
        _row("input", "InputLayer", [None, 32, 32, 3], inbound=[]),
        _row("conv1", "Conv2D", [None, 32, 32, 32], 896, config=conv, inbound=["input"]),
        _row("pool1", "MaxPooling2D", [None, 16, 16, 32], config=pool, inbound=["conv1"]),
        _row("conv2", "Conv2D", [None, 16, 16, 64], 18_496, config=conv, inbound=["pool1"]),
        _row("pool2", "MaxPooling2D", [None, 8, 8, 64], config=pool, inbound=["conv2"]),
        _row("flatten", "Flatten", [None, 4096], inbound=["pool2"]),
        _row("dense1", "Dense", [None, 512], 2_097_664, input_shape=[None, 4096], inbound=["flatten"]),
        _row("predictions", "Dense", [None, 10], 5_130, input_shape=[None, 512], inbound=["dense1"]),
    ]  # fmt: skip
    return {"layers": layers, "totals": {"total": 2_122_186, "trainable": 2_122_186}}


def _by_key(lessons: list[Lesson]) -> dict[str, Lesson]:
    return {lesson.key: lesson for lesson in lessons}


def test_model_lessons_use_the_models_numbers() -> None:
    lessons = _by_key(model_lessons(simple_cnn_summary(), None, None, language("en")))
    assert list(lessons) == ["sharing", "parameters", "hierarchy", "preprocessing"]
    sharing = lessons["sharing"]
    assert Span("896 parameters", "bold") in sharing.spans
    assert sharing.text.startswith(
        "conv1 has 896 parameters: 32 filters of 27 weights (+ a bias each)."
    )
    assert "9 weights per channel" in sharing.text
    # 32·32·3 inputs to 32·32·32 outputs, with biases: 3072·32768 + 32768.
    assert Span("100,696,064 parameters", "bold red") in sharing.spans
    assert "dense layers 2,102,794 (99.1 %)" in lessons["parameters"].text
    hierarchy = lessons["hierarchy"].text
    assert "3×3 pixels" in hierarchy and "8×8 pixels" in hierarchy
    assert "Filters pane" not in hierarchy
    tui = _by_key(model_lessons(simple_cnn_summary(), None, None, language("en"), for_tui=True))
    assert "Filters pane" in tui["hierarchy"].text


def test_model_lessons_in_spanish() -> None:
    lessons = _by_key(model_lessons(simple_cnn_summary(), None, None, language("es")))
    assert lessons["sharing"].title == "Por qué las CNN superan a las MLP: parámetros compartidos"
    assert Span("896 parámetros", "bold") in lessons["sharing"].spans
    assert "2.097.664" in lessons["parameters"].text and "99,1 %" in lessons["parameters"].text
    assert "8×8 píxeles" in lessons["hierarchy"].text
    assert "69,37 %" in lessons["sharing"].text


def test_transfer_model_lessons_say_what_is_frozen() -> None:
    summary = simple_cnn_summary()
    summary["totals"] = {"total": 2_270_794, "trainable": 12_810}
    run = RunRecord(
        id="20260101-120000-finetune-cccc",
        experiment="finetune",
        model=ModelInfo(name="transfer", backbone="MobileNetV2", preprocessing="mobilenet_v2",
                        preprocessing_range=[-1.0, 1.0]),
        metrics=Metrics(overfit_gap=44.46),
        phases=[Phase(name="finetune", epochs=5, epochs_run=5, trainable=745_290,
                      learning_rate=1e-5, time=1.0, trainable_layers=list("abcdefghij"))],
    )  # fmt: skip
    results = {"MobileNetV2": {"before": 0.21, "after": 0.2994, "random_init": True}}
    lessons = _by_key(model_lessons(summary, run, results, language("en")))
    assert {"input_size", "frozen"} <= set(lessons)
    frozen = lessons["frozen"].text
    assert frozen.startswith("12,810 of 2,270,794 parameters train (0.56 %)")
    assert "unfroze 10 layers: 745,290 trainable" in frozen and "gap: 44.5 points" in frozen
    prep = lessons["preprocessing"].text
    assert "(inputs in [-1, 1])" in prep
    assert "Your runs: 21.0 % → 29.9 % (random init, so both are low)." in prep
