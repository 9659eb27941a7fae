"""The engine's parts: what a model is and what a run's settings are.

  model    a model is one object (`Model`): parameter count, seeded init, flat packing,
           loss and gradient, and the code of its compiled kernel; `MODELS` by name
  config   a run's settings as one frozen record (`RunConfig`) and its named seeds (`RunSeeds`)

The one round loop that uses them is `fedlite.simulation.simulate`; what a run carries from
round to round (`RunState`, so that a run can be resumed) lives there too.
"""
