"""Communication: fewer bytes per round (notebook 12).

  compression   top-k with error feedback and unbiased stochastic quantisation, as aggregators
                (`simulate(..., aggregator=TopK(...))`), and the bytes each one sends
  lora          federated fine-tuning through a low-rank adapter: only B and A travel

Each module is also `fedlite.compression`, `fedlite.lora` (the same module object).
"""
