"""The course: what the notebooks use on top of the library, and nothing in the library imports.

  experiments   the pure functions behind the notebooks' explorers
  plotting      figures (every function takes ax=None and returns the axes)
  widgets       the interactive explorers (the only module importing ipywidgets)
  checks, checks_algorithms, checks_classification, checks_privacy, checks_communication
                the exercise checkers, on the shared machinery of _checking

Each module is also `fedlite.<name>` (the same module object).  This file imports nothing, so
matplotlib and ipywidgets load only when plotting or widgets is first used.
"""
