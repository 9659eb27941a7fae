"""The engine's parts: what a model is, what a run's settings are, and the one round loop.

  model    a model is one object (`Model`): parameter count, seeded init, flat packing,
           loss and gradient, and the code of its compiled kernel; `MODELS` by name
  config   a run's settings as one frozen record (`RunConfig`) and its named seeds (`RunSeeds`)
  state    what a run carries from round to round (`RunState`), so a run can be resumed
"""
