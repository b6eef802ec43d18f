# Per-run analysis tables, figures and report entries (issue 5).


def figure_targets():
    return []
