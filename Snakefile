# Raw videos -> features -> E-CMA models -> predictions -> metrics, as one DAG.
#
#   snakemake --cores 2 results/demo/metrics.json                 # the synthetic demo, runs anywhere
#   snakemake --cores 8 --use-conda results/llp/metrics.json      # LLP (videos and csvs under data/llp)
#   snakemake --profile workflow/profiles/slurm results/llp/metrics.json
#   snakemake --cores 2 results/demo/sweeps/demo_sweep/sweep.html   # a sweep (sweeps: in config.yaml)
#
# The rules only wire files together: every job runs one `ecma` subcommand, and the input
# functions ask ecma.data.datasets which videos, shards and csvs a job depends on.
import os
import sys

from snakemake.utils import min_version, validate

from ecma.config import workflow_config_from_dict
from ecma.config.schema import schema_error_line
from ecma.errors import EcmaError
from ecma.sweeps.trials import sweep_trials

min_version("9.0")


configfile: "config.yaml"


# The package's checks first (types, bounds, unknown keys, every dataset's merged settings, variants, every
# value each sweep's sampler can give), so that a bad config stops here with one line naming the key and the
# value; then the schema, which also fills in the defaults of ecma/config/.
try:
    ECMA = workflow_config_from_dict(config, "config")
    SWEEP_TRIALS = {name: sweep_trials(ECMA, name) for name in ECMA.sweeps}
    validate(config, "workflow/schemas/config.schema.yaml")
except (EcmaError, WorkflowError) as error:
    print(
        f"ecma: error: {error if isinstance(error, EcmaError) else schema_error_line(error)}",
        file=sys.stderr,
    )
    raise SystemExit(2)

# envs/ecma.yaml pip-installs the package from ${ECMA_ROOT}: this repository.
os.environ.setdefault("ECMA_ROOT", workflow.basedir)


# Jobs find `ecma` on the PATH; where it is not there (e.g. .venv/bin/snakemake without an activated
# venv), the ecma beside this Snakemake's Python serves. Appended, so a PATH that has one keeps it.
# The OpenMP settings of ecma/runtime_env.py need no entry: importing ecma above set them in this
# process's environment (where the user had not), which every job inherits, on SLURM through sbatch
# --export=ALL, and each job's own `ecma` sets them again before torch loads. Listed here, a variable the
# user replaced (GOMP_SPINCOUNT by OMP_WAIT_POLICY) would stop the workflow as missing.
envvars:
    "PATH",


os.environ["PATH"] += os.pathsep + os.path.dirname(sys.executable)


# Cheap jobs and downloads run where Snakemake runs (on a cluster: the login node, which has the network).
localrules:
    fetch_weights,
    summarize_seeds,
    main_metrics,
    nothing_predicted,
    ablation,
    per_class_chart,
    timelines,
    run_summary,
    sweep_select,
    sweep_summarize,
    sweep_page,


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/parse.smk"
include: "workflow/rules/sweep.smk"


# Without a target, every generated (demo) dataset; real datasets are asked for by name, e.g.
# results/llp/metrics.json, because their videos must be in place first, and sweeps by their page, e.g.
# results/demo/sweeps/demo_sweep/sweep.html.
rule all:
    default_target: True
    input:
        [
            f"results/{name}/{result}"
            for name in DEMO_DATASETS
            for result in dataset_results(name)
        ],
