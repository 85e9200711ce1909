"""A dataset on disk: its annotation files, its videos, and which shard each video belongs to.

Used by the workflow (to wire the DAG and to stop before any job runs when a dataset is broken) and by
``ecma extract --dataset``. Raw LLP videos are stored as ``<YouTube id>.mp4`` while the annotations say
``<id>_<start>_<end>``; both namings are found.

A dataset of published features (``source: features``) of a format that an extraction profile also computes
(VALOR's) may have a video folder too: each annotated video then gets its features from one place only, its
published files where it has them (imported), else its video (extracted), by :func:`dataset_feature_sources`.
Per shard, the imported videos go to ``features/shard-I.h5`` and the extracted ones to
``features/extracted/shard-I.h5``, which exists only for shards with videos to extract; training, prediction
and parsing read both (:func:`feature_shards`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ecma import registry
from ecma.argv import option
from ecma.data.names import shard_of, youtube_id
from ecma.config import WorkflowConfig
from ecma.data.annotation_sets import (SPLITS, Annotations, LlpAnnotations, SplitOverlapError, UnavAnnotationSet,
                                      check_disjoint)
from ecma.data.annotations import read_split
from ecma.data.classes import LLP_CLASSES
from ecma.data.failures import failures_path_for
from ecma.data.unav_demo import ANNOTATION_FILE as UNAV_DEMO_ANNOTATIONS, FEATURES_FOLDER as UNAV_DEMO_FEATURES
from ecma.errors import EcmaError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")
def match_videos(video_dir: str | os.PathLike, filenames: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
    """Find each annotation filename's video as ``<filename>.<ext>`` or ``<YouTube id>.<ext>``.

    Returns (found: filename -> path, unmatched files in the folder that no filename claims).
    """
    video_dir = Path(video_dir)
    by_stem: dict[str, Path] = {}
    for p in sorted(video_dir.iterdir()):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            by_stem.setdefault(p.stem, p)
    found: dict[str, Path] = {}
    for name in filenames:
        path = by_stem.get(name) or by_stem.get(youtube_id(name))
        if path is not None:
            found[name] = path
    claimed = {p for p in found.values()}
    unmatched = [p.name for p in by_stem.values() if p not in claimed]
    return found, unmatched


@dataclass(frozen=True)
class DatasetFiles:
    name: str
    annotations: Path
    videos: Optional[Path]
    train_csv: Path
    val_csv: Path
    test_csv: Path
    eval_audio_csv: Path
    eval_visual_csv: Path
    n_shards: int
    missing_videos: str
    generated: bool
    allow_split_overlap: bool = False
    features_format: Optional[str] = None  # source: features
    features_root: Optional[Path] = None
    features_encoders: str = "published"  # valor: which weights computed the published features (config)
    # llp: the csv files above; unav100: ``annotations`` is UnAV-100's JSON (the csv fields are unused)
    annotation_format: str = "llp"

    def split_csv(self, split: str) -> Path:
        try:
            return {"train": self.train_csv, "val": self.val_csv, "test": self.test_csv}[split]
        except KeyError:
            raise EcmaError(f"unknown split {split!r} (train, val, test)") from None

    def annotation_files(self) -> list[Path]:
        if self.annotation_format == "unav100":
            return [self.annotations]
        return [self.train_csv, self.val_csv, self.test_csv, self.eval_audio_csv, self.eval_visual_csv]

    def annotation_set(self, classes: Optional[Sequence[str]] = None) -> Annotations:
        """The dataset's annotations behind :class:`ecma.data.annotation_sets.Annotations`."""
        if self.annotation_format == "unav100":
            return UnavAnnotationSet(self.annotations, classes)
        return LlpAnnotations({s: self.split_csv(s) for s in SPLITS}, self.eval_audio_csv, self.eval_visual_csv,
                              **({} if classes is None else {"classes": tuple(classes)}))

    @property
    def classes(self) -> tuple[str, ...]:
        """The dataset's event classes, in label-matrix order: LLP's 25 for LLP-format csvs (LLP, the demo),
        the file's for UnAV-100 (by label_id)."""
        return LLP_CLASSES if self.annotation_format == "llp" else self.annotation_set().classes

    def filenames(self) -> list[str]:
        """Every video of the train, val and test splits, in file order."""
        ann = self.annotation_set()
        names = [f for split in SPLITS for f in ann.split(split).filenames]
        return list(dict.fromkeys(names))  # a video in two splits (where allowed) is one video

    def annotation_inputs(self, role: str, split: str = "test") -> dict[str, str]:
        """The annotation files a job reads, by the ``ecma`` option that takes each (dashes as underscores):
        ``train`` (training: train and val split, segment truth), ``split`` (the videos of ``split``:
        prediction) or ``truth`` (``split`` and its segment truth: evaluation, baseline, timelines)."""
        if role not in ("train", "split", "truth"):
            raise ValueError(f"unknown annotation role {role!r}")
        if self.annotation_format == "unav100":
            return {"annotations": str(self.annotations)}
        truth = {"eval_audio": str(self.eval_audio_csv), "eval_visual": str(self.eval_visual_csv)}
        if role == "train":
            return {"train": str(self.train_csv), "val": str(self.val_csv), **truth}
        return {"split": str(self.split_csv(split)), **(truth if role == "truth" else {})}

    def annotation_flags(self, role: str, split: str = "test") -> str:
        """The command-line options naming :meth:`annotation_inputs` (and, for UnAV-100, which split)."""
        inputs = self.annotation_inputs(role, split)
        flags = [option(f"--{k.replace('_', '-')}", v) for k, v in inputs.items()]
        if self.annotation_format == "unav100" and role != "train":
            flags.append(option("--subset", split))
        return " ".join(flags)


def dataset_files(cfg: WorkflowConfig, name: str, results: str | os.PathLike = "results") -> DatasetFiles:
    ds = cfg.dataset(name)
    features_format = ds.features.format if ds.source == "features" else None
    features_root = Path(ds.features.root) if ds.source == "features" else None
    if ds.demo is not None and ds.demo.format == "unav100":  # generated features and JSON (ecma.data.unav_demo)
        root = Path(results) / name / "data"
        annotations, videos, generated = root / UNAV_DEMO_ANNOTATIONS, None, True
        features_format, features_root = "unav100", root / UNAV_DEMO_FEATURES
    elif ds.demo is not None:
        root = Path(results) / name / "data"
        annotations, videos, generated = root, root / "videos", True
    else:
        annotations, generated = Path(ds.annotations), False
        videos = Path(ds.videos) if ds.videos else None  # None: source: features
    return DatasetFiles(
        name=name,
        annotations=annotations,
        videos=videos,
        train_csv=annotations / ds.train_csv,
        val_csv=annotations / ds.val_csv,
        test_csv=annotations / ds.test_csv,
        eval_audio_csv=annotations / ds.eval_audio_csv,
        eval_visual_csv=annotations / ds.eval_visual_csv,
        n_shards=ds.n_shards,
        missing_videos=ds.missing_videos,
        generated=generated,
        allow_split_overlap=ds.allow_split_overlap,
        features_format=features_format,
        features_root=features_root,
        features_encoders=ds.features.encoders if ds.source == "features" else "published",
        annotation_format=ds.annotation_format,
    )


def workflow_dataset(config: str | os.PathLike, name: str, results: str | os.PathLike = "results") -> tuple[WorkflowConfig, DatasetFiles]:
    """A dataset of a workflow config file and its files: what a command given ``--config`` and ``--dataset``
    (instead of its inputs one by one) works on."""
    from ecma.config import load_workflow_config

    wcfg = load_workflow_config(config)
    return wcfg, dataset_files(wcfg, name, results)


def _annotated_names(files: DatasetFiles) -> list[str]:
    """Every annotated video, after checking the annotation files exist and the splits do not overlap."""
    for p in files.annotation_files():
        if not p.is_file():
            raise EcmaError(f"{p}: annotation file of dataset {files.name!r} not found")
    if not files.allow_split_overlap:
        try:
            check_disjoint(files.annotation_set(), SPLITS)
        except SplitOverlapError as e:  # only here does the setting help; a broken file's error stands alone
            raise EcmaError(f"{e} (set datasets.{files.name}.allow_split_overlap: true if intended)") from None
    return files.filenames()


def _check_absent(files: DatasetFiles, names: list[str], found: dict, where: Path, what: str) -> None:
    absent = [n for n in names if n not in found]
    if absent and files.missing_videos == "error":
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise EcmaError(
            f"{where}: {len(absent)} annotated video(s) {what}: {shown} "
            f"(set datasets.{files.name}.missing_videos: skip to leave them out)"
        )


def _folder_videos(files: DatasetFiles, names: list[str]) -> dict[str, Path]:
    """filename -> video of the annotated videos in the dataset's folder; a missing folder, or a video that no
    annotation row names, is an error."""
    if not files.videos.is_dir():
        raise EcmaError(f"{files.videos}: video folder of dataset {files.name!r} not found")
    found, unmatched = match_videos(files.videos, names)
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        raise EcmaError(f"{files.videos}: {len(unmatched)} video(s) have no annotation row: {shown}")
    return found


def dataset_videos(files: DatasetFiles) -> dict[str, Path]:
    """filename -> video path for every annotated video, after checking the folder against the annotations.

    Stops (EcmaError) on a missing folder, on a video that no annotation row names, on a video listed in
    two splits (unless the dataset says ``allow_split_overlap: true``), and, unless the dataset says
    ``missing_videos: skip``, on an annotation row without a video.
    """
    names = _annotated_names(files)
    found = _folder_videos(files, names)
    _check_absent(files, names, found, files.videos, "not found")
    return found


@dataclass(frozen=True)
class FeatureSources:
    """Where the annotated videos of a dataset of published features get their features: one place each."""

    imported: dict[str, list[Path]]  # filename -> its published feature files (one per stream)
    extracted: dict[str, Path]  # filename -> its video, for the videos without published features

    def extraction_shards(self, n_shards: int) -> list[int]:
        """The shards with videos to extract: only these get an extraction job (and build the encoders)."""
        return sorted({shard_of(name, n_shards) for name in self.extracted})


def dataset_feature_sources(files: DatasetFiles) -> FeatureSources:
    """Each annotated video's source: its published files where they all exist (imported), else its video in
    the dataset's folder, where it has one (extracted). A video with both is imported, so that a video whose
    features are published later moves from the extracted shard to the imported one.

    Stops on a missing root or sub-folder of the format, a missing video folder (where one is configured), a
    video that no annotation row names, split overlap, and (unless ``missing_videos: skip``) an annotated video
    with neither. Each folder is listed once: LLP has 11,849 videos.
    """
    fmt = registry.feature_format(files.features_format)
    root = fmt.check_root(files.features_root)
    names = _annotated_names(files)
    published = fmt.feature_files(root, names)
    if files.videos is None:
        _check_absent(files, names, published, root, f"have no {fmt.name} feature files")
        return FeatureSources(published, {})
    videos = {n: p for n, p in _folder_videos(files, names).items() if n not in published}
    _check_absent(files, names, {**published, **videos}, root,
                  f"have neither {fmt.name} feature files nor a video in {files.videos}")
    return FeatureSources(published, videos)


def videos_to_extract(files: DatasetFiles) -> dict[str, Path]:
    """filename -> video of the videos a dataset extracts: all of a dataset of videos, and those without
    published features of a dataset of published features."""
    if files.features_format is None:
        return dataset_videos(files)
    return dataset_feature_sources(files).extracted


EXTRACTED = "extracted"  # the folder under features/ of the shards a dataset of published features extracts


def shard_path(results: str | os.PathLike, name: str, shard: int, *, extracted: bool = False) -> Path:
    """results/NAME/features/shard-I.h5 (imported, or extracted for a dataset of videos), or
    results/NAME/features/extracted/shard-I.h5 (extracted beside the imported shard)."""
    folder = Path(results) / name / "features"
    return (folder / EXTRACTED if extracted else folder) / f"shard-{shard}.h5"


def feature_shards(files: DatasetFiles, results: str | os.PathLike,
                   sources: Optional[FeatureSources] = None) -> list[Path]:
    """The shards training, prediction and parsing read: one per shard index, and for a dataset of published
    features (``sources``), the extracted shard of every shard index that has videos to extract."""
    shards = [shard_path(results, files.name, i) for i in range(files.n_shards)]
    if sources is not None:
        shards += [shard_path(results, files.name, i, extracted=True)
                   for i in sources.extraction_shards(files.n_shards)]
    return shards


def stale_extracted_shards(results: str | os.PathLike, name: str, planned: Iterable[int]) -> list[Path]:
    """The extracted shards of dataset ``name`` (and their failures tables) that the plan no longer has: their
    shard has no video to extract any more (each got published features, left the annotations, or the video
    folder was taken out of the config). Their incremental stores (``features/extracted/store/``) stay: no
    job reads them but extraction, which prunes them to its videos."""
    planned = set(planned)
    stale = []
    for path in sorted((Path(results) / name / "features" / EXTRACTED).glob("shard-*.h5")):
        index = path.name.removeprefix("shard-").removesuffix(".h5")
        if not (index.isdigit() and int(index) in planned):
            stale += [p for p in (path, failures_path_for(path)) if p.exists()]
    return stale


def remove_stale_extracted_shards(results: str | os.PathLike, planned: dict[str, Iterable[int]]) -> list[Path]:
    """Delete :func:`stale_extracted_shards` of each dataset of ``planned`` (name -> its shards with videos to
    extract): one video, one place, also for a reader who globs the folder. Returns what was deleted."""
    removed = []
    for name, shards in planned.items():
        for path in stale_extracted_shards(results, name, shards):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def shard_videos(videos: dict, n_shards: int, index: int) -> dict:
    """The videos of shard ``index`` (0-based), in a stable order."""
    if not 0 <= index < n_shards:
        raise EcmaError(f"shard {index} does not exist (the dataset has {n_shards} shards)")
    return {n: p for n, p in sorted(videos.items()) if shard_of(n, n_shards) == index}


def folder_videos(folder: str | os.PathLike) -> list[Path]:
    """The video files of a folder, sorted; a missing folder or one without videos is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EcmaError(f"{folder}: video folder not found")
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise EcmaError(f"{folder}: no videos ({', '.join(VIDEO_EXTENSIONS)}) in the folder")
    return videos


def first_test_videos(files: DatasetFiles, videos: dict[str, Path], n: int) -> list[Path]:
    """The videos of the first ``n`` test-split rows that have a video (the demo parses these)."""
    names = read_split(files.test_csv, files.classes).filenames
    return [videos[name] for name in names if name in videos][:n]
