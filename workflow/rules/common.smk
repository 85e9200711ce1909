# Wiring shared by the rules: wildcard constraints, input functions that ask ecma.data.datasets which files a
# job depends on, and param functions that hand each job its settings.
#
# Nothing is written while Snakemake parses: every setting a job uses reaches it as a param (JSON on its
# command line), so a dry run or a second, refused invocation with another config changes nothing of a
# running one, and Snakemake's params trigger reruns exactly where a used setting changed.
import dataclasses
import functools
import json
import re
import sys

from ecma.data.datasets import (
    dataset_feature_sources,
    dataset_files,
    dataset_videos,
    feature_shards as dataset_feature_shards,
    first_test_videos,
    folder_videos,
    remove_stale_extracted_shards,
    shard_videos,
)
from ecma.argv import check_length, option, options
from ecma.extract.valor.identity import published_weights_mismatch
from ecma.extract.weights import needed_weights, random_encoders, with_local_weights
from ecma.sweeps.trials import chosen_settings, final_seeds, sweep_metric, trial_config

ENV = "../../envs/ecma.yaml"

DEMO_DATASETS = [name for name, ds in ECMA.datasets.items() if ds.demo is not None]
# Datasets imported from published features, and those extracted from videos; datasets of published
# features with a video folder extract the videos without published features beside the imports.
FEATURE_DATASETS = [n for n, ds in ECMA.datasets.items() if ds.imports_features]
VIDEO_DATASETS = [n for n in ECMA.datasets if n not in FEATURE_DATASETS]
FEATURES_AND_VIDEOS_DATASETS = [n for n in FEATURE_DATASETS if ECMA.dataset(n).videos]


def any_of(names):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    dataset=any_of(ECMA.datasets),
    variant=any_of(ECMA.variants),
    split="train|val|test",
    shard=r"\d+",
    seed=r"\d+",
    sweep=any_of(ECMA.sweeps),
    trial=r"[^/]+",  # a sweep's trial folder, named by its settings (ecma.sweeps.trials.Trial.name)


def dataset(wildcards):
    """The dataset's files; a generated one exists only once its checkpoint has run."""
    if ECMA.dataset(wildcards.dataset).demo is not None:
        checkpoints.demo_dataset.get(dataset=wildcards.dataset)
    return dataset_files(ECMA, wildcards.dataset, "results")


def stop(error):
    """End the whole run with the package's one-line message (no traceback), before any job starts."""
    print(f"ecma: error: {error}", file=sys.stderr)
    raise SystemExit(2)


@functools.cache
def videos_of(name):
    """filename -> video of every annotated video; stops on a missing folder, an unmatched video or leakage."""
    try:
        return dataset_videos(dataset_files(ECMA, name, "results"))
    except EcmaError as error:
        stop(error)


def import_shard_videos(wildcards):
    files = dataset(wildcards)
    return shard_videos(
        feature_sources_of(wildcards.dataset).imported,
        files.n_shards,
        int(wildcards.shard),
    )


def import_inputs(wildcards):
    """The feature files of one shard's videos: new or changed files re-import only their shard."""
    return [str(p) for paths in import_shard_videos(wildcards).values() for p in paths]


def import_annotations(wildcards):
    files = dataset(wildcards)
    return [str(files.annotations)] if files.annotation_format == "unav100" else []


def import_name_args(wildcards):
    """--names=NAME per video of the shard (ecma.argv); a changed list re-imports the shard. A shard without
    videos gets a bare --names (an empty list), and so an empty shard."""
    names = import_shard_videos(wildcards)
    return checked_length(options("--names", names) or "--names", wildcards)


def shard_of_dataset(wildcards):
    """filename -> video of one shard's videos to extract, so that a new video reruns only the shard it falls
    in (in a dataset of published features, only the videos without them: extracted_videos_of).
    """
    files = dataset(wildcards)
    return shard_videos(
        extracted_videos_of(wildcards.dataset), files.n_shards, int(wildcards.shard)
    )


def shard_video_files(wildcards):
    check_encoders(wildcards.dataset)
    return [str(p) for p in shard_of_dataset(wildcards).values()]


def check_encoders(name):
    """A real dataset must not be extracted with random-initialised encoders (unless it says so)."""
    unset = random_encoders(ECMA.for_dataset(name).extract)
    if unset and not ECMA.dataset(name).random_encoders:
        stop(
            f"datasets.{name}: {' and '.join(unset)} null would extract with randomly initialised "
            f"encoders; name the weights (see config.yaml), or set datasets.{name}.random_encoders: true"
        )


def encoder_weights(wildcards):
    """The weights files the dataset's extraction reads (fetched ones come from rule fetch_weights)."""
    weights = needed_weights(ECMA.for_dataset(wildcards.dataset).extract)
    return [w.path for w in weights.values()]


def fetch_spec(wildcards):
    """library name tag of the weights file being fetched, from the datasets that need it."""
    path = f"resources/weights/{wildcards.library}/{wildcards.file}"
    for name in ECMA.datasets:
        for weights in needed_weights(ECMA.for_dataset(name).extract).values():
            if weights.path == path and weights.fetch is not None:
                return " ".join(weights.fetch).strip()
    stop(f"{path}: no configured dataset fetches these weights")


def shard_video_args(wildcards):
    """--videos=PATH --names=NAME per video of the shard: names that start with '-' stay values (ecma.argv).
    A param, not derived: a changed list of names reruns the shard."""
    videos = shard_of_dataset(wildcards)
    words = f"{options('--videos', videos.values())} {options('--names', videos)}"
    return checked_length(words, wildcards)


def checked_length(words, wildcards):
    """Stops the workflow before any job when a shard's names would not fit on one command line."""
    try:
        return check_length(
            words,
            f"results/{wildcards.dataset}/features/shard-{wildcards.shard}.h5",
            f"raise datasets.{wildcards.dataset}.n_shards",
        )
    except EcmaError as error:
        stop(error)


def feature_shards(wildcards):
    """Every shard of the dataset, and the extracted ones beside the imports (ecma.data.datasets.feature_shards)."""
    return [
        str(p)
        for p in dataset_feature_shards(
            dataset_files(ECMA, wildcards.dataset, "results"),
            "results",
            extraction_plan_of(wildcards.dataset),
        )
    ]


def annotation_inputs(role):
    """Input function (use with unpack) for the annotation files a job of this role reads: LLP's csvs or
    UnAV-100's JSON (ecma.data.datasets.DatasetFiles.annotation_inputs); a {split} wildcard picks the split.
    """
    return lambda wildcards: dataset(wildcards).annotation_inputs(
        role, wildcards.get("split", "test")
    )


def annotation_flags(role):
    """Param function: the options naming those files (and, for UnAV-100, --subset)."""
    return lambda wildcards: dataset(wildcards).annotation_flags(
        role, wildcards.get("split", "test")
    )


def job_config(wildcards):
    """The package config of one job: the dataset's settings, its variant and seed, and extraction as the jobs
    run it."""
    seed = wildcards.get("seed")
    cfg = ECMA.for_dataset(
        wildcards.dataset,
        wildcards.get("variant"),
        None if seed is None else int(seed),
    )
    return as_jobs_run_it(cfg)


def as_jobs_run_it(cfg):
    """A job's config with extraction as the jobs run it (fetched weights replaced by their local files)."""
    return dataclasses.replace(cfg, extract=with_local_weights(cfg.extract))


def settings(*sections, config=job_config):
    """Param function: the settings of these config sections that decide a job's numbers, as JSON; ``config``
    gives a job's package config from its wildcards (a sweep's jobs have their own, workflow/rules/sweep.smk).

    The job reads them from its command line (``--settings``), and as params they are Snakemake's rerun
    trigger: a changed value reruns exactly the rules that use it.
    """

    def params(wildcards):
        numeric, _ = config(wildcards).split_runtime(sections)
        if (
            "train" in numeric
        ):  # one job's seed is train.seed; adding a seed retrains no other
            del numeric["train"]["seeds"]
        return json.dumps(numeric, sort_keys=True)

    return params


def runtime_settings(*sections, config=job_config):
    """Param function: the runtime settings of these sections (device, threads, workers, batch sizes), as JSON
    for ``--runtime``. It takes ``threads``, so Snakemake counts it as derived from the job's resources and
    never reruns a job because one of them changed (ecma.config.runtime_setting)."""

    def params(wildcards, threads):
        _, runtime_part = config(wildcards).split_runtime(sections)
        return json.dumps(runtime_part, sort_keys=True)

    return params


# What a training job reads (and stores in model.pt): eval's thresholds pick the best epoch, and extract lets
# `ecma parse` rebuild the extractor the model was trained on.
TRAINING_SECTIONS = ("model", "loss", "pseudo", "coleaf", "train", "eval", "extract")


def gpus(section):
    """Resource function: 1 GPU when the section's device names CUDA, else 0 (override in a profile)."""

    def resource(wildcards):
        device = getattr(ECMA.for_dataset(wildcards.dataset), section).device
        return 1 if device.startswith("cuda") else 0

    return resource


def extract_threads(wildcards):
    """The decoding processes plus the encoders' process."""
    return ECMA.for_dataset(wildcards.dataset).extract.workers + 1


def train_threads(wildcards):
    """torch's threads (train.threads), 4 when left to torch."""
    return ECMA.for_dataset(wildcards.dataset).train.threads or 4


def seeds_of(dataset_name):
    return ECMA.for_dataset(dataset_name).train.seeds


def seed_metrics(wildcards):
    """SEED=metrics of every seed of one variant on one split, for `ecma summarize`."""
    return {
        str(
            seed
        ): f"results/{wildcards.dataset}/metrics/{wildcards.variant}/seed-{seed}/{wildcards.split}.json"
        for seed in seeds_of(wildcards.dataset)
    }


def variant_test_metrics(wildcards):
    """variant -> its test metrics of every seed, for the ablation table."""
    return {
        f"{v}-seed{seed}": f"results/{wildcards.dataset}/metrics/{v}/seed-{seed}/test.json"
        for v in ECMA.variants
        for seed in seeds_of(wildcards.dataset)
    }


def main_test_metrics(wildcards):
    return f"results/{wildcards.dataset}/metrics/{ECMA.main_variant}/test.json"


def main_test_predictions(wildcards):
    """The main variant's test predictions of the first seed, for the timeline pictures."""
    seed = seeds_of(wildcards.dataset)[0]
    return f"results/{wildcards.dataset}/predictions/{ECMA.main_variant}/seed-{seed}/test.h5"


# What `snakemake` without a target and README command 1 make for a demo dataset: the numbers, the
# report and the parsed test videos.
DATASET_RESULTS = [
    "parsed/index.html",
    "metrics.json",
    "ablation.md",
    "ablation.json",
    "ablation.html",
    "report/per_class.png",
    "report/timelines.png",
    "report/run.html",
]


# AV-only datasets (UnAV-100's format) have no videos to parse and no audio/visual split to chart.
AV_ONLY_RESULTS = [
    r for r in DATASET_RESULTS if r not in ("parsed/index.html", "report/per_class.png")
]


def dataset_results(name):
    """The results the default target makes of a (demo) dataset."""
    return (
        AV_ONLY_RESULTS
        if ECMA.dataset(name).annotation_format == "unav100"
        else DATASET_RESULTS
    )


def main_model_of(name):
    """The main variant's model of the first seed of a dataset: what parses videos."""
    return (
        f"results/{name}/models/{ECMA.main_variant}/seed-{seeds_of(name)[0]}/model.pt"
    )


def main_model(wildcards):
    return main_model_of(wildcards.dataset)


def demo_parse_videos(wildcards):
    files = dataset(wildcards)
    n = ECMA.dataset(wildcards.dataset).demo.n_parse
    return [str(p) for p in first_test_videos(files, videos_of(wildcards.dataset), n)]


def parse_checkpoint(wildcards):
    """config.yaml's parse.checkpoint, or the main model of parse.dataset (built by the DAG)."""
    if ECMA.parse is None:
        stop(
            "results/parse needs a parse: section in config.yaml (videos, and checkpoint or dataset)"
        )
    if ECMA.parse.checkpoint is not None:
        return ECMA.parse.checkpoint
    return main_model_of(ECMA.parse.dataset)


def parse_video_files(wildcards):
    try:
        return [str(p) for p in folder_videos(ECMA.parse.videos)]
    except EcmaError as error:
        stop(error)


def gpus_for_parse(wildcards):
    """1 GPU when the parsing model's dataset extracts on CUDA (a checkpoint file: 0; override in a profile)."""
    if ECMA.parse is None or ECMA.parse.dataset is None:
        return 0
    return (
        1
        if ECMA.for_dataset(ECMA.parse.dataset).extract.device.startswith("cuda")
        else 0
    )


# Datasets of published features with a video folder (format valor): ecma.data.datasets decides which videos
# are imported and which extracted (workflow/rules/extract.smk, rule extract_new_videos); shards left with no
# video to extract lose their extracted shard when the run starts (onstart, in extract.smk).

# dataset -> its shards with videos to extract, as this run plans them
PLANNED_EXTRACTIONS = {}


@functools.cache
def feature_sources_of(name):
    """Each annotated video's source, imported or extracted (ecma.data.datasets.FeatureSources); stops on a
    missing root, folder or file, and on extractions that would not mix with the imported features.
    """
    files = dataset_files(ECMA, name, "results")
    try:
        sources = dataset_feature_sources(files)
    except EcmaError as error:
        stop(error)
    if sources.extracted:
        check_extraction_mixes(name, len(sources.extracted))
    PLANNED_EXTRACTIONS[name] = sources.extraction_shards(files.n_shards)
    return sources


def extraction_plan_of(name):
    """The feature sources of a dataset of published features with a video folder, else None."""
    return feature_sources_of(name) if name in FEATURES_AND_VIDEOS_DATASETS else None


def extracted_videos_of(name):
    """filename -> video of the videos a dataset extracts: all of a dataset of videos, those without
    published features of a dataset of published features."""
    if name in FEATURE_DATASETS:
        return feature_sources_of(name).extracted
    return videos_of(name)


def check_extraction_mixes(name, n_videos):
    """Features extracted from a dataset's videos must mix with its imported ones; where the extract section's
    weights cannot give the published features' identity, stop before any job with the reason.
    """
    if dataset_files(ECMA, name, "results").features_encoders == "extract":
        return  # the imports take the identity of those very weights
    reason = published_weights_mismatch(ECMA.for_dataset(name).extract)
    if reason:
        stop(
            f"datasets.{name}: its {n_videos} video(s) without published features would be extracted with "
            f"other weights than the published features were computed with, and the two would refuse to mix "
            f"in training: {reason}. Set datasets.{name}.features.encoders: extract if the published features "
            f"were computed with the weights its extract section names (README, Published features), or take "
            f"out datasets.{name}.videos"
        )


def import_weights(wildcards):
    """The weights files that name the encoders of imported features (features.encoders: extract), else none."""
    if dataset(wildcards).features_encoders != "extract":
        return []
    check_encoders(wildcards.dataset)
    return encoder_weights(wildcards)


def import_encoders_args(wildcards):
    """--encoders=JSON: the extract section whose weights computed the features (features.encoders: extract)."""
    if dataset(wildcards).features_encoders != "extract":
        return ""
    return option("--encoders", settings("extract")(wildcards))


# Sweeps (workflow/rules/sweep.smk): the trials and the final runs of the chosen settings.


def sweep_of(wildcards):
    """The sweep of a path; a path under another dataset than the sweep's stops the workflow."""
    sweep = ECMA.sweep(wildcards.sweep)
    if sweep.dataset != wildcards.dataset:
        stop(
            f"results/{wildcards.dataset}/sweeps/{wildcards.sweep}: sweep {wildcards.sweep} runs on dataset "
            f"{sweep.dataset} (results/{sweep.dataset}/sweeps/{wildcards.sweep})"
        )
    return sweep


def trial_of(wildcards):
    """The trial a folder name stands for; a name the sweep does not draw stops the workflow."""
    trials = {trial.name: trial for trial in SWEEP_TRIALS[wildcards.sweep]}
    if wildcards.trial not in trials:
        stop(
            f"trials/{wildcards.trial}: not a trial of sweep {wildcards.sweep} "
            f"(ecma sweep --config config.yaml --name {wildcards.sweep} --list)"
        )
    return trials[wildcards.trial]


def chosen_of(wildcards):
    """The settings the sweep chose, from best.yaml: known only once checkpoint sweep_select has run."""
    best = checkpoints.sweep_select.get(
        dataset=wildcards.dataset, sweep=wildcards.sweep
    ).output.best
    try:
        return chosen_settings(ECMA, wildcards.sweep, best)
    except EcmaError as error:
        stop(error)


def after_the_choice(wildcards):
    """Input function of every job of the final runs: nothing once the choice is made (a choice made again
    with the same settings then reruns nothing: the settings are params), else best.yaml, to be made first.
    All of them take it, not only the training: Snakemake decides again whether a job must run only for the
    jobs that wait on a checkpoint, and would otherwise rerun the scoring of final runs it did not retrain.
    """
    chosen_of(wildcards)
    return []


def sweep_job_config(wildcards):
    """The package config of a sweep's training or scoring job: a trial's settings, or the chosen ones with a
    final seed (ecma.sweeps.trials.trial_config)."""
    sweep_of(wildcards)
    if "trial" in wildcards.keys():
        cfg = trial_config(ECMA, wildcards.sweep, trial_of(wildcards).settings)
    else:
        cfg = trial_config(
            ECMA, wildcards.sweep, chosen_of(wildcards), int(wildcards.seed)
        )
    return as_jobs_run_it(cfg)


def trial_models(wildcards):
    """Every trial's model.pt, in the sampler's order."""
    sweep_of(wildcards)
    return [
        f"results/{wildcards.dataset}/sweeps/{wildcards.sweep}/trials/{trial.name}/model.pt"
        for trial in SWEEP_TRIALS[wildcards.sweep]
    ]


def trial_args(wildcards, input):
    """--trials=INDEX=FOLDER per trial (ecma.argv); too many to fit on a command line stops the workflow."""
    words = options(
        "--trials",
        [
            f"{trial.index}={os.path.dirname(model)}"
            for trial, model in zip(SWEEP_TRIALS[wildcards.sweep], input)
        ],
    )
    try:
        return check_length(
            words,
            f"sweeps.{wildcards.sweep}",
            "draw fewer trials or split the sweep",
        )
    except EcmaError as error:
        stop(error)


def final_seed_metrics(wildcards):
    """SEED=test metrics of every final run, for `ecma summarize`."""
    sweep_of(wildcards)
    return {
        str(
            seed
        ): f"results/{wildcards.dataset}/sweeps/{wildcards.sweep}/final/seed-{seed}/test.json"
        for seed in final_seeds(ECMA, wildcards.sweep)
    }
