"""The sanity checks of notebook 1.22e (not Snakemake's --report): checks (each check once), series (what the checks read and compare), legacy (the
notebooks' own files as a subject), report (the sanity report assembled, and its verdict) and render (the
sanity report written as JSON, markdown and a manifest)."""
