"""One writer per output (ecma.locks): a second job on a folder a live job holds stops with one line naming
that job; a lock whose process is gone (killed, a reused pid, a lost node) is taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from ecma.cli import main
from ecma.errors import EcmaError
from ecma.locks import STALE_SECONDS, hold_output, lock_path, process_start
from synthetic import make_planted_data

HOLDER = """
import sys, time
from ecma.locks import hold_output
with hold_output(sys.argv[1], "ecma train"):
    print("held", flush=True)
    time.sleep(600)
"""


def start_holder(folder):
    """Another process holding ``folder``, as a trainer left running by a killed Snakemake would."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("locks")
    data = make_planted_data(root / "data", n_train=16, n_val=8, n_test=8)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"audio_dim": 32, "visual_dim": 24, "d_model": 16, "num_layers": 1, "num_heads": 1, "d_ff": 16},
        "train": {"epochs": 1, "batch_size": 8, "threads": 1},
    }))
    return data, config


def train_argv(data, config, out):
    return ["train", "--config", str(config), "--variant", "coleaf", "--features", *map(str, data.shards),
            "--output-dir", str(out), "--train", str(data.train_csv), "--val", str(data.val_csv), "--eval-audio",
            str(data.eval_audio_csv), "--eval-visual", str(data.eval_visual_csv), "--quiet"]


def test_a_second_trainer_of_a_held_folder_stops_with_one_line_until_the_first_is_gone(planted, tmp_path, capsys):
    data, config = planted
    out = tmp_path / "run"
    holder = start_holder(out)
    try:
        rc = main(train_argv(data, config, out))
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err, err
        assert err.startswith(f"ecma train: error: {out}: in use by another job (pid {holder.pid} on "), err
        assert f"kill {holder.pid}" in err
        assert not (out / "model.pt").exists() and not (out / "last.pt").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # as `kill -9`: the lock file stays behind
        holder.wait()
    assert lock_path(out).is_file()
    assert main(train_argv(data, config, out)) == 0  # the stale lock is taken over
    assert (out / "model.pt").is_file() and not lock_path(out).exists()


def test_a_lock_of_a_reused_pid_or_a_silent_node_is_stale(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    lock = lock_path(folder)
    me = socket.gethostname()
    # our own (live) pid, but recorded with another start time: the pid was reused since
    lock.write_text(json.dumps({"host": me, "pid": os.getpid(), "started": "1"}))
    with hold_output(folder):
        assert json.loads(lock.read_text())["started"] == process_start(os.getpid())
    # a node of the cluster that still touches its lock is alive; one silent for STALE_SECONDS is not
    lock.write_text(json.dumps({"host": "node-17", "pid": 4242}))
    with pytest.raises(EcmaError, match=r"in use by another job \(pid 4242 on node-17"):
        with hold_output(folder):
            pass
    old = time.time() - STALE_SECONDS - 5
    os.utime(lock, (old, old))
    with hold_output(folder):
        assert json.loads(lock.read_text())["host"] == me
    assert not lock.exists()


def test_a_half_written_lock_is_stale_and_a_file_output_is_locked_beside_it(tmp_path):
    shard = tmp_path / "shard-3.h5"
    lock = lock_path(shard)
    assert lock == tmp_path / ".shard-3.h5.ecma-lock"
    lock.write_text("")  # being written this instant: held
    with pytest.raises(EcmaError, match="in use by another job"):
        with hold_output(shard):
            pass
    old = time.time() - 60
    os.utime(lock, (old, old))  # left empty by a writer killed between creating and filling it: stale
    with hold_output(shard):
        with pytest.raises(EcmaError, match=str(shard)):
            with hold_output(shard):
                pass
