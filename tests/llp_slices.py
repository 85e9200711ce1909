"""Small slices of LLP's real annotation files, chosen for their awkward names, written as a dataset.

Where the real files are in ../shared/data/llp (tests/conftest.py), the slice keeps their rows as they are:
split rows, and the segment-level truth rows of the chosen validation and test videos. The training videos
are chosen to include every kind of name LLP has: a leading ``-`` (151 of LLP's 11,849 names, which argparse
would read as options), ``-`` and ``_`` inside the YouTube id, the longest names (fractional start and end
seconds, ``AP0061o0Nvk_101.8_111.8``) and the shortest. Where the real files are absent, names of the same
kinds are made up, so that the tests still run on them (and say so).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVAL_FILES = ("AVVP_eval_audio.csv", "AVVP_eval_visual.csv")


@dataclass
class LlpSlice:
    split_rows: dict[str, list[list[str]]]  # split -> [filename, event_labels] rows
    eval_rows: dict[str, list[list[str]]] = field(default_factory=dict)  # eval file -> rows
    real: bool = False  # taken from LLP's own files

    def names(self, split: Optional[str] = None) -> list[str]:
        splits = [split] if split else list(SPLIT_FILES)
        return [row[0] for s in splits for row in self.split_rows[s]]

    def write(self, folder: Path) -> Path:
        """The five csv files, tab-separated with LLP's headers."""
        folder.mkdir(parents=True, exist_ok=True)
        for split, name in SPLIT_FILES.items():
            _write(folder / name, ["filename", "event_labels"], self.split_rows[split])
        for name in EVAL_FILES:
            _write(folder / name, ["filename", "onset", "offset", "event_labels"], self.eval_rows.get(name, []))
        return folder


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))[1:]


def dash_names(llp_dir: Path) -> list[str]:
    """Every LLP file name that starts with '-' (151 in AVVP_dataset_full.csv)."""
    return [row[0] for row in _rows(llp_dir / "AVVP_dataset_full.csv") if row[0].startswith("-")]


KINDS = {  # what each chosen training name must show
    "leading dash": lambda n: n.startswith("-"),
    "dash inside the id": lambda n: "-" in n[1:11],
    "underscore inside the id": lambda n: "_" in n[:11],
    "fractional seconds (longest)": lambda n: re.search(r"\.\d+_\d+\.\d+$", n) is not None,
}


def real_slice(llp_dir: Path, n_train: int = 8, n_val: int = 3, n_test: int = 3) -> LlpSlice:
    """Rows of LLP's own files: training names of every kind (two with a leading '-'), the shortest, and
    validation and test videos (one with a leading '-' each) that have truth rows."""
    split_rows = {s: _rows(llp_dir / f) for s, f in SPLIT_FILES.items()}
    eval_all = {name: _rows(llp_dir / name) for name in EVAL_FILES}
    with_truth = {row[0] for rows in eval_all.values() for row in rows}
    train: list[list[str]] = []
    for kind, test in KINDS.items():
        want = 2 if kind == "leading dash" else 1
        train += [r for r in split_rows["train"] if test(r[0]) and r not in train][:want]
    train.append(min(split_rows["train"], key=lambda r: (len(r[0]), r[0])))
    train += [r for r in split_rows["train"] if r not in train][: max(0, n_train - len(train))]
    chosen = {"train": train}
    for split, n in (("val", n_val), ("test", n_test)):
        scored = [r for r in split_rows[split] if r[0] in with_truth]
        picked = [r for r in scored if r[0].startswith("-")][:1]
        chosen[split] = picked + [r for r in scored if r not in picked][: n - len(picked)]
    scored_names = {r[0] for s in ("val", "test") for r in chosen[s]}
    evals = {name: [r for r in rows if r[0] in scored_names] for name, rows in eval_all.items()}
    return LlpSlice(chosen, evals, real=True)


def made_up_slice() -> LlpSlice:
    """Names of the same kinds as LLP's, with truth rows, for where LLP's files are absent."""
    train = ["-9WBkdJq104_30_40", "-1OKHyQdqNQ_0_10", "a-b-cdefghi_20_30", "GN3k_CvthEg_80_90",
             "AP0061o0Nvk_101.8_111.8", "MVWVECUju4w_0_10", "K0rFc6_p5zo_470_480", "Zx9yW8vU7tS_5_15"]
    val, test = ["-3G-bs5JaW8_100_110", "Hz6_DhTI27s_10_20", "q1w2e3r4t5y_0_10"], \
        ["-7tDh-UQR7Q_50_60", "ApKgnUPayqU_8.5_18.5", "u7i8o9p0a1s_40_50"]
    labels = ["Speech", "Dog", "Speech,Dog"]
    split_rows = {"train": [[n, labels[i % 3]] for i, n in enumerate(train)],
                  "val": [[n, labels[i % 3]] for i, n in enumerate(val)],
                  "test": [[n, labels[i % 3]] for i, n in enumerate(test)]}
    audio = [[n, "0", "4", "Speech"] for n in val + test] + [[n, "6", "10", "Dog"] for n in val[1:] + test[1:]]
    visual = [[n, "2", "7", "Dog"] for n in val + test]
    return LlpSlice(split_rows, {"AVVP_eval_audio.csv": audio, "AVVP_eval_visual.csv": visual}, real=False)


def llp_slice(llp_dir: Optional[Path]) -> LlpSlice:
    """The real slice where LLP's files are at ``llp_dir``, else the made-up one."""
    if llp_dir is not None and (llp_dir / "AVVP_train.csv").is_file():
        return real_slice(llp_dir)
    return made_up_slice()
