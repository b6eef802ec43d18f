"""What the report shows: figures (the figure registry), plots (each figure's drawing function by its name),
panels (what every figure is drawn with), plots_cloud, plots_freeze, plots_pairs and plots_experiments (the
figure families), basis, sky and film (the fixed principal basis, figure p's sky maps, the film of a run),
explorer and explorer_page (the token explorer's data and page), tables (the report's HTML tables), findings
(notebook 1.20b's next steps answered) and experiments (the summary across experiments)."""
