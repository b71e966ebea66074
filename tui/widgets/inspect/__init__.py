"""The Inspect screen's Filters, Activations, Preprocessing and Deploy panes, one per module, on a
shared `InspectPane` base."""

from __future__ import annotations

from tui.widgets.inspect.activations_pane import ActivationsPane
from tui.widgets.inspect.base import InspectPane
from tui.widgets.inspect.deploy_pane import DeployPane
from tui.widgets.inspect.filters_pane import FiltersPane
from tui.widgets.inspect.preprocessing_pane import PreprocessingPane

__all__ = ["ActivationsPane", "DeployPane", "FiltersPane", "InspectPane", "PreprocessingPane"]
