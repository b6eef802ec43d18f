"""The analyses of the recorded runs: rows (what a recording's rows and steps mean), metrics (on one matrix),
per_step (a run's analysis table and a pair's decomposition), adam (the Adam accounting), lattice (bf16 hops
and freeze phases), epochs (of the dead cloud) and distances (run to run)."""
