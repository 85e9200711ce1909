import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def llp_annotations_dir() -> Path:
    return Path(os.environ.get("ECMA_LLP_ANNOTATIONS", REPO.parent / "shared" / "data" / "llp"))


@pytest.fixture
def llp_dir() -> Path:
    d = llp_annotations_dir()
    if not (d / "AVVP_test_pd.csv").is_file():
        pytest.skip(f"LLP annotation files not found in {d} (set ECMA_LLP_ANNOTATIONS to the folder holding AVVP_*.csv)")
    return d


@pytest.fixture
def repo_root() -> Path:
    return REPO


from slurm_fixtures import slurm_cluster  # noqa: E402,F401  (session fixture: a real one-node SLURM cluster)
