# The Flannel 1 vs Flannel 3 sanity checks and the replica runs (issue 4).


def sanity_targets():
    return []
