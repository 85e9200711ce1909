# Wiring shared by the rules: the config file the jobs read, wildcard constraints, and input
# functions that ask ecma.datasets which files a job depends on.
import dataclasses
import functools
import re
from pathlib import Path

import yaml

from ecma.datasets import dataset_files, dataset_videos, shard_videos
from ecma.io import atomic_path

ENV = "../../envs/ecma.yaml"

# The jobs read the config Snakemake validated (config.yaml, --configfile and --config merged, schema
# defaults filled in), not config.yaml itself. It is rewritten only when it changes, and it is a
# constant param rather than an input: which jobs rerun after a config change is decided by each
# rule's own settings params below, so a new training setting leaves the features alone.
EFFECTIVE_CONFIG = "results/config.effective.yaml"


def write_effective_config(path, settings):
    text = yaml.safe_dump(settings, sort_keys=True)
    target = Path(path)
    if not target.is_file() or target.read_text() != text:
        with atomic_path(target) as tmp:
            tmp.write_text(text)


write_effective_config(EFFECTIVE_CONFIG, config)

DEMO_DATASETS = [name for name, ds in ECMA.datasets.items() if ds.demo is not None]


def any_of(names):
    """A wildcard regex matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    dataset=any_of(ECMA.datasets),
    variant=any_of(ECMA.variants),
    split="train|val|test",
    shard=r"\d+",


def dataset(wildcards):
    """The dataset's files; a generated one exists only once its checkpoint has run."""
    if ECMA.dataset(wildcards.dataset).demo is not None:
        checkpoints.demo_dataset.get(dataset=wildcards.dataset)
    return dataset_files(ECMA, wildcards.dataset, "results")


@functools.cache
def videos_of(name):
    """filename -> video of every annotated video; stops on a missing folder or an unmatched video."""
    return dataset_videos(dataset_files(ECMA, name, "results"))


def shard_inputs(wildcards):
    """Exactly the videos of one shard, so that a new video reruns only the shard it falls in."""
    files = dataset(wildcards)
    shard = shard_videos(
        videos_of(wildcards.dataset), files.n_shards, int(wildcards.shard)
    )
    generated = [str(files.annotations)] if files.generated else []
    return generated + [str(p) for p in shard.values()]


def feature_shards(wildcards):
    n_shards = ECMA.dataset(wildcards.dataset).n_shards
    return expand(
        "results/{dataset}/features/shard-{shard}.h5",
        dataset=wildcards.dataset,
        shard=range(n_shards),
    )


def split_csv(wildcards):
    return str(dataset(wildcards).split_csv(wildcards.split))


def annotation(attribute):
    """Input function for one of the dataset's csv files (train_csv, eval_audio_csv, ...)."""
    return lambda wildcards: str(getattr(dataset(wildcards), attribute))


def settings(*sections):
    """Param function: the dataset's (and variant's) effective settings of these config sections.

    As params they are Snakemake's rerun trigger: a changed value reruns exactly the rules that use it.
    """

    def params(wildcards):
        cfg = ECMA.for_dataset(wildcards.dataset, wildcards.get("variant"))
        return {s: dataclasses.asdict(getattr(cfg, s)) for s in sections}

    return params


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


def variant_test_metrics(wildcards):
    """variant -> its test metrics, for the ablation table."""
    return {
        v: f"results/{wildcards.dataset}/metrics/{v}-test.json" for v in ECMA.variants
    }


def main_test_metrics(wildcards):
    return f"results/{wildcards.dataset}/metrics/{ECMA.main_variant}-test.json"
