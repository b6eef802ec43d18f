"""flannel: what happens to dead vocabulary tokens while a tiny GPT-2 trains.

One module per concern: config (validation), corpus (demo text), data (tokenizer, ids, masks),
model, training, recording (streaming safetensors), checks (sanity), analysis, figures.
"""

__version__ = "0.1.0"
