"""flannel: what happens to dead vocabulary tokens while a tiny GPT-2 trains.

One subpackage per stage of the workflow's DAG, in DAG order, and at the top what every stage uses:

- data: the corpus, the tokenizer, token ids and the live/dead masks (corpus, tokens).
- training: the model, the numerics that decide a run's bytes, the recorder, checkpoints, the training loop and a
  training job's set-up (model, numerics, recorder, checkpoint, loop, job).
- sanity: the sanity checks and the sanity report (checks, series, legacy, report, render).
- analysis: the per-run and per-pair tables read from the recordings (rows, metrics, per_step, adam,
  lattice, epochs, distances).
- report: the figure registry, the drawing, the report's tables, the findings and the summary across
  experiments (figures, plots, panels, plots_cloud, plots_freeze, plots_pairs, plots_experiments, tables,
  findings, experiments).
- config, errors, logs, outputs, recording (the recording and its reader), compact (the compact format),
  moments (Adam's moment arithmetic, bitwise), background (the recording's writer thread), digest (a saveable SHA-256), kernels (the vendor-independent float32
  kernels of a training step, which the Adam replay shares), codedigest.
"""

__version__ = "0.1.0"
