"""Progress lines for quiet jobs: how often, and the rate and time left they state."""

import logging

from ecma.progress import Progress, format_seconds


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_quiet_progress_logs_rate_and_time_left(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="ecma"):
        p = Progress(100, "extract shard-0.h5", "video", bar=False, every=25, seconds=1e9, clock=clock)
        for i in range(100):
            clock.now += 2.0  # two seconds a video
            p.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "extract shard-0.h5: 100 video(s) to do"
    # a line at 25, 50, 75 and 100 videos, with 0.5 videos/s and the time the rest takes at that rate
    assert lines[1:] == [
        "extract shard-0.h5: 25/100 videos (25%), 0.50 videos/s, elapsed 0:50, left 2:30",
        "extract shard-0.h5: 50/100 videos (50%), 0.50 videos/s, elapsed 1:40, left 1:40",
        "extract shard-0.h5: 75/100 videos (75%), 0.50 videos/s, elapsed 2:30, left 0:50",
        "extract shard-0.h5: 100/100 videos (100%), 0.50 videos/s, elapsed 3:20, left 0:00",
    ]


def test_a_slow_job_logs_at_least_every_so_many_seconds(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="ecma"):
        p = Progress(1000, "train", "batch", bar=False, every=1000, seconds=60, clock=clock)
        for _ in range(5):
            clock.now += 30
            p.update()
    assert len(caplog.records) == 1 + 2  # the header, then at 60 s and 120 s


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 61, 3599, 3600, 7325)] == ["0:00", "1:00", "1:01", "59:59", "1:00:00", "2:02:05"]
