# Per experiment, every figure of the registry (flannel.report.figures) in one job and the report's tables. The
# figures rule carries the figures config section, so editing figure code or a figure parameter redraws the
# figures without touching the tables.


include: "helpers/figures.smk"


# One job draws every figure: a job's start-up (imports) costs more than drawing a figure.
rule figures:
    input:
        unpack(figure_inputs),
    output:
        **figure_outputs(),
    log:
        "logs/{experiment}/figures/figures.log",
    benchmark:
        "benchmarks/{experiment}/figures/figures.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        settings=figure_settings,
        code=code_digest("draw_figures.py"),
    script:
        "../workflow/scripts/draw_figures.py"


# The report's tables of one experiment: a summary row per run (the analysis tables' first and last steps), the
# first step explained, and the findings page.
rule report_tables:
    input:
        runs=analysis_tables,
        decomposition=decomposition_tables,
        lifespan=lifespan_tables,
    output:
        **report_table_outputs(),
    log:
        "logs/{experiment}/report/report_tables.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=experiment_run_ids,
        n_embd=experiment_n_embd,
        code=code_digest("report_tables.py"),
    script:
        "../workflow/scripts/report_tables.py"


# The film of one run: the dead and a sample of the live rows of W (and E, untied) on a fixed principal basis,
# frame by frame, rows frozen for good (the lattice rows table) drawn apart; ffmpeg encodes it byte-reproducibly.
# The report shows the page that embeds it (its viewer plays no bare video).
rule film:
    input:
        run=RUN,
        rows=LATTICE_ROWS,
    output:
        film=FILM,
        page=report(
            FILM_PAGE,
            caption="../workflow/report/film.rst",
            category="Films",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "run": "{tying} seed {seed}"},
        ),
    log:
        "logs/{experiment}/figures/film/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/figures/film/{tying}/seed{seed}.tsv"
    conda:
        "../envs/flannel.yaml"
    params:
        settings=film_settings,
        code=code_digest("film.py"),
    script:
        "../workflow/scripts/film.py"


# The token explorer of one run: one self-contained HTML page (data embedded, script inline) where a token is
# picked to see its row's trajectory, lattice phases and place in the cloud, with a sortable table of dead tokens.
rule explorer:
    input:
        run=RUN,
        rows=LATTICE_ROWS,
        tokens=TOKEN_TABLE,
    output:
        page=report(
            EXPLORER,
            caption="../workflow/report/explorer.rst",
            category="Token explorer",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "run": "{tying} seed {seed}"},
        ),
    log:
        "logs/{experiment}/report/explorer/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/report/explorer/{tying}/seed{seed}.tsv"
    conda:
        "../envs/flannel.yaml"
    params:
        settings=explorer_settings,
        code=code_digest("explorer.py"),
    script:
        "../workflow/scripts/explorer.py"
