"""`python -m engine ...` is the same as the `engine` command.

The command line is composed above engine/ (in the `cnnlab` package, which also wires in export/'s
commands), and engine/ must never import export/. So this program entry runs that root as a
script instead of importing it: `python -m engine` keeps working for users and for the TUI, which
starts the engine as `python -m engine run ...`.
"""

from __future__ import annotations

import runpy

runpy.run_module("cnnlab", run_name="__main__", alter_sys=True)
