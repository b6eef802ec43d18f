"""Training: model (the notebooks' GPT-2 and its initialisation), numerics (what decides a run's bytes besides
its config), recorder (what a run writes into its recording), checkpoint (resumable training), loop (one training run,
and the replica) and job
(the train and replica scripts' shared set-up). Nothing here is imported by the package's __init__, so
numerics.pin_cpu_kernels can run before torch loads."""
