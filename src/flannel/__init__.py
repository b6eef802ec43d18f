"""flannel: what happens to dead vocabulary tokens while a tiny GPT-2 trains.

One module per concern (each module's docstring says which): config, corpus, data, model, numerics, training,
recording, metrics, analysis, figures and plots, checks, legacy, report and render, codedigest, outputs, logs,
errors.
"""

__version__ = "0.1.0"
