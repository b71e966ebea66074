"""The settings form of one experiment, built from ExperimentConfig's field metadata.

Each setting the experiment reads (`ExperimentSpec.uses`) gets one row: name, editor, and a
help line that turns into the reason when the value is refused. Parsing and checking are the
engine's own (`engine.config.parse_value` / `validate`), so the form refuses exactly what the
CLI would refuse, with the same words.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, Select, SelectionList, Static

from engine.backbones import get_backbone, list_backbones
from engine.config import ExperimentConfig, parse_value, validate
from engine.errors import CnnlabError
from engine.experiments import ExperimentSpec
from engine.preprocessing import list_preprocessing
from tui.i18n import N_, _

_FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
# The rows' labels are the settings' names with spaces; marked here so babel extracts them.
_LABELS = (
    N_("data"),
    N_("subset"),
    N_("resize"),
    N_("val split"),
    N_("seed"),
    N_("model"),
    N_("backbone"),
    N_("backbones"),
    N_("weights"),
    N_("input size"),
    N_("preprocessing"),
    N_("head"),
    N_("epochs"),
    N_("batch size"),
    N_("learning rate"),
    N_("optimizer"),
    N_("early stopping"),
    N_("patience"),
    N_("tensorboard"),
    N_("mlp units"),
    N_("feature cache"),
    N_("feature backend"),
    N_("finetune layers"),
    N_("finetune lr"),
    N_("finetune epochs"),
    N_("strategy"),
    N_("parallel"),
    N_("executor"),
    N_("address"),
)


def field_error(name: str, value: Any) -> str | None:
    """The engine's reason for refusing `value` for setting `name`, or None when it is fine."""
    try:
        config = ExperimentConfig().replace(**{name: value})
    except (TypeError, ValueError) as exc:
        return f"{name}: {exc}"
    for problem in validate(config):
        if problem.startswith(f"{name}:"):
            return problem
    return None


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def weights_note(backbone: str, weights: str, input_size: int) -> str | None:
    """A warning when ImageNet weights are asked for but are not in Keras' cache (offline = fail)."""
    if weights != "imagenet":
        return None
    try:
        from engine.weights import is_cached, weights_cache_path

        spec = get_backbone(backbone)
        if is_cached(spec, input_size):
            return None
        path = weights_cache_path(spec, input_size)
    except Exception:  # noqa: BLE001 - a hint only; the engine gives the real error
        return None
    return _(
        "⚠ {file} is not in {folder}: offline this fails — choose weights none (random init)"
    ).format(file=path.name, folder=path.parent)


class SettingRow(Horizontal):
    """One setting: label, editor and a help/error line."""

    DEFAULT_CSS = """
    SettingRow {
        height: auto;
        width: 1fr;
    }
    SettingRow > .setting-name {
        width: 17;
        padding: 0 1 0 0;
        text-align: right;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    SettingRow > .setting-editor {
        width: 26;
    }
    SettingRow > SelectionList.setting-editor {
        height: auto;
        max-height: 10;
        border: none;
        padding: 0;
    }
    SettingRow > .setting-help {
        width: 1fr;
        padding: 0 0 0 1;
        color: $text-muted;
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    SettingRow.-invalid > .setting-help {
        color: $error;
        text-style: bold;
    }
    SettingRow.-invalid > .setting-name {
        color: $error;
    }
    SettingRow.-changed > .setting-name {
        color: $accent;
        text-style: bold;
    }
    """

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(id=f"setting-{name}")
        self.setting = name
        self.initial = value
        self.meta = dict(_FIELDS[name].metadata)
        self.ftype = str(_FIELDS[name].type)
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Label(_(self.setting.replace("_", " ")), classes="setting-name")
        yield self._editor()
        yield Static(self.help_text(), classes="setting-help")

    def help_text(self) -> str:
        help_text = _(str(self.meta.get("help", "")))
        bounds = []
        if "min" in self.meta:
            bounds.append(f"≥ {self.meta['min']}")
        if "max" in self.meta:
            bounds.append(f"≤ {self.meta['max']}")
        return help_text + (f" ({', '.join(bounds)})" if bounds else "")

    def _editor(self) -> Widget:
        name, value, meta = self.setting, self.initial, self.meta
        editor_id = f"edit-{name}"
        kind = meta.get("kind")
        if self.ftype.startswith("bool"):
            return Select(
                [(_("yes"), True), (_("no"), False)],
                value=bool(value),
                allow_blank=False,
                compact=True,
                id=editor_id,
                classes="setting-editor",
            )
        if "choices" in meta:
            return Select(
                [(c, c) for c in meta["choices"]],
                value=value,
                allow_blank=False,
                compact=True,
                id=editor_id,
                classes="setting-editor",
            )
        if kind == "backbone":
            return Select(
                [(b, b) for b in list_backbones()],
                value=value if value in list_backbones() else list_backbones()[0],
                allow_blank=False,
                compact=True,
                id=editor_id,
                classes="setting-editor",
            )
        if kind == "preprocessing":
            options = ["auto", *list_preprocessing()]
            return Select(
                [(p, p) for p in options],
                value=value if value in options else "auto",
                allow_blank=False,
                compact=True,
                id=editor_id,
                classes="setting-editor",
            )
        if kind == "backbones":
            chosen = {str(v).lower() for v in value or []}
            return SelectionList[str](
                *[(b, b, b.lower() in chosen) for b in list_backbones()],
                id=editor_id,
                classes="setting-editor",
            )
        suggestions: list[str] = []
        placeholder = ""
        if kind == "data":
            suggestions = ["cifar10", "synthetic", "folder:", "npz:"]
        elif kind == "weights":
            suggestions = ["imagenet", "none"]
            placeholder = "imagenet | none | PATH.h5"
        elif name == "subset":
            placeholder = _("all")
        return Input(
            format_value(value),
            placeholder=placeholder,
            suggester=SuggestFromList(suggestions, case_sensitive=False) if suggestions else None,
            compact=True,
            id=editor_id,
            classes="setting-editor",
        )

    @property
    def editor(self) -> Widget:
        return self.query_one(f"#edit-{self.setting}")

    def read(self) -> tuple[Any, str | None]:
        """The current value (parsed) and the reason it is refused, if it is."""
        editor = self.editor
        if isinstance(editor, Input):
            try:
                value = parse_value(self.setting, editor.value)
            except CnnlabError as exc:
                return None, str(exc)
        elif isinstance(editor, SelectionList):
            value = list(editor.selected)
            # Keep the registry's order, not the order of clicks.
            value = [b for b in list_backbones() if b in value]
            if not value:
                return value, _("{setting}: choose at least one backbone").format(
                    setting=self.setting
                )
        elif isinstance(editor, Select):
            # Blank only for a moment while mounting; the initial value is what it shows.
            value = self.initial if editor.value is Select.NULL else editor.value
        else:  # pragma: no cover
            return None, f"{self.setting}: no editor"
        return value, field_error(self.setting, value)

    def refresh_state(self) -> None:
        value, error = self.read()
        self.error = error
        self.set_class(error is not None, "-invalid")
        self.set_class(error is None and value != self.initial, "-changed")
        help_widget = self.query_one(".setting-help", Static)
        help_widget.update(Text(error) if error else self.help_text())

    def reset(self) -> None:
        editor = self.editor
        if isinstance(editor, Input):
            editor.value = format_value(self.initial)
        elif isinstance(editor, SelectionList):
            chosen = {str(v).lower() for v in self.initial or []}
            editor.deselect_all()
            for b in list_backbones():
                if b.lower() in chosen:
                    editor.select(b)
        elif isinstance(editor, Select):
            editor.value = self.initial
        self.refresh_state()


class SettingsForm(Vertical):
    """All settings of one experiment; `values()` for the engine, `problems()` for the user."""

    DEFAULT_CSS = """
    SettingsForm {
        height: auto;
        width: 1fr;
    }
    SettingsForm > #form-focus-help {
        height: auto;
        color: $text-muted;
        padding: 0 0 0 1;
        margin-top: 1;
    }
    SettingsForm > #form-note {
        height: auto;
        color: $warning;
        padding: 0 0 0 18;
    }
    SettingsForm > #form-problems {
        height: auto;
        color: $error;
        padding: 0 0 0 18;
    }
    """

    class Changed(Message):
        """A setting changed; `valid` is False when any row is refused."""

        def __init__(self, form: SettingsForm, valid: bool) -> None:
            super().__init__()
            self.form = form
            self.valid = valid

        @property
        def control(self) -> SettingsForm:
            return self.form

    def __init__(self, spec: ExperimentSpec, data_source: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        defaults = spec.config(data=data_source)
        self.initial = {name: getattr(defaults, name) for name in spec.uses}
        self._touched = False  # no edit yet: change events only echo the initial values

    def compose(self) -> ComposeResult:
        for name, value in self.initial.items():
            yield SettingRow(name, value)
        yield Static("", id="form-focus-help")
        yield Static("", id="form-note")
        yield Static("", id="form-problems")

    def on_mount(self) -> None:
        # A form premounted just as the app quits is mounted without its children: nothing to do.
        if self.is_attached and self.app.is_running:
            self._refresh_note()

    @property
    def rows(self) -> list[SettingRow]:
        return list(self.query(SettingRow))

    def row(self, name: str) -> SettingRow:
        return self.query_one(f"#setting-{name}", SettingRow)

    def values(self) -> dict[str, Any]:
        """Every setting's current value (refused ones keep their initial value)."""
        out: dict[str, Any] = {}
        for row in self.rows:
            value, error = row.read()
            out[row.setting] = row.initial if error else value
        return out

    def problems(self) -> list[str]:
        """Every reason the current settings are refused (rows first, then the whole config)."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        for row in self.rows:
            value, error = row.read()
            if error:
                problems.append(error)
            else:
                values[row.setting] = value
        if not problems:
            problems = validate(self.spec.config(**values))
        return problems

    def show_problems(self, problems: list[str]) -> None:
        self.query_one("#form-problems", Static).update("\n".join(f"✗ {p}" for p in problems))

    def reset(self) -> None:
        for row in self.rows:
            row.reset()
        self.show_problems([])
        self._refresh_note()

    def _refresh_note(self) -> None:
        # Only the rows the note depends on: every read runs the engine's validation.
        values: dict[str, Any] = {}
        for name in ("weights", "backbone", "backbones", "input_size"):
            if name in self.initial:
                value, error = self.row(name).read()
                values[name] = self.initial[name] if error else value
        note = None
        if "weights" in values:
            backbones = (
                [values["backbone"]]
                if "backbone" in values
                else list(values.get("backbones") or [])
            )
            size = values.get("input_size", 32)
            notes = [weights_note(b, str(values["weights"]), int(size)) for b in backbones]
            missing = [n for n in notes if n]
            if missing:
                note = (
                    missing[0]
                    if len(missing) == 1
                    else (
                        _(
                            "⚠ ImageNet weights of {n} backbones are not cached: offline this "
                            "fails — choose weights none (random init)"
                        ).format(n=len(missing))
                    )
                )
        self.query_one("#form-note", Static).update(note or "")

    def _changed(self, widget: Widget) -> None:
        row = next((a for a in widget.ancestors if isinstance(a, SettingRow)), None)
        if row is None:
            return
        if not self._touched and row.read() == (row.initial, None):
            return  # the editors announcing their initial values while mounting
        self._touched = True
        row.refresh_state()
        self._refresh_note()
        self.show_problems([])
        self.post_message(self.Changed(self, not any(r.error for r in self.rows)))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Spell out the focused setting's help in full under the form (rows show one line)."""
        for ancestor in event.widget.ancestors_with_self:
            if isinstance(ancestor, SettingRow):
                text = Text()
                text.append(ancestor.setting.replace("_", " "), style="bold")
                text.append(f" (--{ancestor.setting.replace('_', '-')}): {ancestor.help_text()}")
                if ancestor.error:
                    text.append(f"\n{ancestor.error}", style="bold red")
                self.query_one("#form-focus-help", Static).update(text)
                return

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        self._changed(event.input)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select)

    @on(SelectionList.SelectedChanged)
    def _selection_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self._changed(event.selection_list)
