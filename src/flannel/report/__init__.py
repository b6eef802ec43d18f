"""What the report shows: figures (the figure registry), plots (drawing them), tables (the report's HTML
tables), findings (notebook 1.20b's next steps answered) and experiments (the summary across experiments)."""
