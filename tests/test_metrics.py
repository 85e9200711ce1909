"""ecma.evaluation.metrics.score against numbers worked out by hand and against a slow loop-based implementation."""

import itertools

import numpy as np
import pytest

from ecma.evaluation.metrics import event_counts, score

LEVEL_KEYS = ("audio", "visual", "audio_visual", "type_av", "event_av")


def intervals(c, t, runs):
    """(C, T) 0/1 array with 1s on the given {class: [(start, end), ...]} (end exclusive)."""
    x = np.zeros((c, t), dtype=np.uint8)
    for cls, spans in runs.items():
        for a, b in spans:
            x[cls, a:b] = 1
    return x


def one_video(pred_a, pred_v, gt_a, gt_v, video_prob=None, c=1, t=10, **kw):
    """Score one video whose segment predictions are given as runs (probabilities 1.0 / 0.0)."""
    pa, pv = intervals(c, t, pred_a), intervals(c, t, pred_v)
    vp = np.ones((1, c)) if video_prob is None else np.asarray([video_prob], dtype=float)
    return score(
        vp, pa.T[None].astype(float), pv.T[None].astype(float),
        intervals(c, t, gt_a)[None], intervals(c, t, gt_v)[None], **kw,
    )


def test_nothing_predicted_and_nothing_true_is_100_everywhere():
    r = one_video({}, {}, {}, {}, c=3)
    for level in ("segment", "event"):
        assert r[level] == {k: 100.0 for k in LEVEL_KEYS}
    assert r["num_videos"] == 1
    # per-class: no class has any TP/FP/FN anywhere
    assert r["per_class"]["event"]["audio"] == {"0": None, "1": None, "2": None}


def test_shifted_prediction_by_hand():
    # audio truth [0,4), prediction [2,6): segments TP 2 FP 2 FN 2 -> F1 4/8; events IoU 2/6 < 0.5 -> FP 1 FN 1
    r = one_video({0: [(2, 6)]}, {}, {0: [(0, 4)]}, {})
    assert r["segment"]["audio"] == pytest.approx(50.0)
    assert r["segment"]["visual"] == 100.0  # nothing visual predicted or true
    assert r["segment"]["audio_visual"] == 100.0
    assert r["segment"]["event_av"] == pytest.approx(50.0)
    assert r["segment"]["type_av"] == pytest.approx((50 + 100 + 100) / 3)
    assert r["event"]["audio"] == 0.0
    assert r["event"]["event_av"] == 0.0
    assert r["per_class"]["segment"]["audio"]["0"] == pytest.approx(50.0)
    assert r["per_class"]["segment"]["visual"]["0"] is None


@pytest.mark.parametrize(
    "pred, true, event_f1",
    [
        ([(0, 2)], [(0, 4)], 100.0),  # IoU 2/4 = 0.5 exactly: TP
        ([(0, 3)], [(1, 4)], 100.0),  # IoU 2/4 with both ends shifted: TP
        ([(0, 4)], [(0, 9)], 0.0),  # IoU 4/9 just below: FP + FN
        ([(1, 4)], [(0, 7)], 0.0),  # IoU 3/7: FP + FN
        ([(0, 5)], [(0, 10)], 100.0),  # 5/10 against an event touching the end
        ([(5, 10)], [(5, 10)], 100.0),  # both touch the end
        ([(9, 10)], [(9, 10)], 100.0),  # a lone last segment is an event
        ([(9, 10)], [(8, 10)], 100.0),  # IoU 1/2 at the end
        ([(9, 10)], [(7, 10)], 0.0),  # IoU 1/3 at the end
        ([(0, 10)], [(0, 1)], 0.0),  # IoU 1/10
    ],
)
def test_event_iou_threshold(pred, true, event_f1):
    r = one_video({0: pred}, {}, {0: true}, {})
    assert r["event"]["audio"] == event_f1


def test_several_events_of_one_class():
    # truth [0,3) [5,7) [9,10); prediction [0,1) (IoU 1/3: FP), [5,7) (TP), [8,10) (IoU 1/2 with [9,10): TP)
    # events: TP 2, FP 1, FN 1 ([0,3)) -> 4/6.  segments: pred {0,5,6,8,9}, true {0,1,2,5,6,9}: TP 4 FP 1 FN 2 -> 8/11
    r = one_video({0: [(0, 1), (5, 7), (8, 10)]}, {}, {0: [(0, 3), (5, 7), (9, 10)]}, {})
    assert r["event"]["audio"] == pytest.approx(100 * 4 / 6)
    assert r["segment"]["audio"] == pytest.approx(100 * 8 / 11)


def test_event_counts_directly():
    pred = np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1, 1]], dtype=bool)
    true = np.array([[1, 0, 0, 1, 1, 0, 0, 1, 1, 0]], dtype=bool)
    # pred runs [0,2) [3,4) [6,10); true runs [0,1) [3,5) [7,9)
    # [0,2)~[0,1): 1/2 TP; [3,4)~[3,5): 1/2 TP; [6,10)~[7,9): 2/4 TP
    assert [int(x[0]) for x in event_counts(pred, true)] == [3, 0, 0]
    true2 = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]], dtype=bool)
    # [6,10)~[5,10): 4/5 TP; [0,2) and [3,4) FP
    assert [int(x[0]) for x in event_counts(pred, true2)] == [1, 2, 0]


def test_video_level_gating():
    full = {0: [(0, 10)]}
    # video-level probability below the threshold: the segment predictions are dropped
    assert one_video(full, {}, {}, {}, video_prob=[0.49])["segment"]["audio"] == 100.0
    assert one_video(full, {}, full, {}, video_prob=[0.49])["segment"]["audio"] == 0.0
    # at the threshold they are kept (>=)
    assert one_video(full, {}, full, {}, video_prob=[0.5])["segment"]["audio"] == 100.0
    assert one_video(full, {}, full, {}, video_prob=[0.7], video_threshold=0.8)["segment"]["audio"] == 0.0


def test_segment_threshold_is_inclusive():
    vp = np.ones((1, 1))
    gt = np.ones((1, 1, 4), dtype=np.uint8)
    probs = np.array([0.5, 0.4999, 0.9, 0.2]).reshape(1, 4, 1)
    r = score(vp, probs, probs, gt, gt)
    # predicted {0, 2} of 4 true segments: TP 2 FN 2 -> 4/6
    assert r["segment"]["audio"] == pytest.approx(100 * 4 / 6)
    r = score(vp, probs, probs, gt, gt, segment_threshold=0.1)
    assert r["segment"]["audio"] == 100.0


def test_audio_visual_is_the_product_and_event_av_pools():
    # audio pred [0,6), visual pred [4,10) -> AV pred [4,6); truth audio [0,10), visual [4,6) -> AV truth [4,6)
    r = one_video({0: [(0, 6)]}, {0: [(4, 10)]}, {0: [(0, 10)]}, {0: [(4, 6)]})
    seg = r["segment"]
    assert seg["audio_visual"] == 100.0
    assert seg["audio"] == pytest.approx(100 * 12 / 16)  # TP 6 FN 4
    assert seg["visual"] == pytest.approx(100 * 4 / 8)  # TP 2 FP 4
    assert seg["event_av"] == pytest.approx(100 * 16 / 24)  # pooled TP 8 FP 4 FN 4 (not the mean, 62.5)
    assert seg["type_av"] == pytest.approx((100 + 75 + 50) / 3)
    ev = r["event"]
    assert ev["audio"] == 100.0  # [0,6) vs [0,10): 6/10
    assert ev["visual"] == 0.0  # [4,10) vs [4,6): 2/6
    assert ev["audio_visual"] == 100.0


def test_event_av_pools_per_class_before_f1():
    # class 0: audio TP, visual FP -> pooled 2/3; class 1: audio only FN -> 0
    r = one_video({0: [(0, 5)]}, {0: [(0, 5)]}, {0: [(0, 5)], 1: [(2, 4)]}, {}, c=2)
    assert r["event"]["audio"] == pytest.approx(50.0)  # class 0: 1, class 1: 0
    assert r["event"]["visual"] == 0.0  # class 0 FP only
    assert r["event"]["event_av"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    # AV: prediction [0,5) on class 0, truth empty (visual truth empty) -> FP -> 0
    assert r["event"]["audio_visual"] == 0.0


def test_average_over_classes_present_then_over_videos():
    c = 3
    # video 0: class 0 perfect (1), class 1 missed (0), class 2 absent -> 0.5; video 1: nothing -> 1.0
    pa = np.stack([intervals(c, 10, {0: [(0, 3)]}), intervals(c, 10, {})]).transpose(0, 2, 1)
    ga = np.stack([intervals(c, 10, {0: [(0, 3)], 1: [(5, 8)]}), intervals(c, 10, {})])
    gv = np.zeros_like(ga)
    r = score(np.ones((2, c)), pa.astype(float), np.zeros_like(pa, dtype=float), ga, gv, classes=["a", "b", "c"])
    assert r["segment"]["audio"] == pytest.approx(75.0)
    assert r["event"]["audio"] == pytest.approx(75.0)
    assert r["num_videos"] == 2
    per = r["per_class"]["segment"]["audio"]
    assert per == {"a": pytest.approx(100.0), "b": 0.0, "c": None}


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        score(np.ones((1, 2)), np.ones((1, 10, 3)), np.ones((1, 10, 3)), np.zeros((1, 3, 10)), np.zeros((1, 3, 10)))
    with pytest.raises(ValueError):
        score(np.ones((1, 2)), np.ones((1, 10, 2)), np.ones((1, 10, 2)), np.zeros((1, 2, 9)), np.zeros((1, 2, 10)))
    with pytest.raises(ValueError):
        score(np.ones((0, 2)), np.ones((0, 10, 2)), np.ones((0, 10, 2)), np.zeros((0, 2, 10)), np.zeros((0, 2, 10)))


# ---- an independent, deliberately plain implementation of the benchmark's rules ----


def slow_events(seq):
    """Maximal runs of 1s as sets of indices."""
    runs, cur = [], []
    for i, x in enumerate(seq):
        if x:
            cur.append(i)
        elif cur:
            runs.append(set(cur))
            cur = []
    if cur:
        runs.append(set(cur))
    return runs


def slow_event_counts(pred, true):
    p, g = slow_events(pred), slow_events(true)

    def match(a, b):
        return len(a & b) >= 0.5 * len(a | b)

    tp = sum(1 for a in p if any(match(a, b) for b in g))
    fp = len(p) - tp
    fn = sum(1 for b in g if not any(match(b, a) for a in p))
    return tp, fp, fn


def slow_segment_counts(pred, true):
    tp = sum(1 for x, y in zip(pred, true) if x and y)
    fp = sum(1 for x, y in zip(pred, true) if x and not y)
    fn = sum(1 for x, y in zip(pred, true) if y and not x)
    return tp, fp, fn


def slow_mean_f1(counts):
    f = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts if tp + fp + fn > 0]
    return sum(f) / len(f) if f else 1.0


def slow_score(vp, ap, vvp, ga, gv, vt, st):
    n, t, c = ap.shape
    per_video = {lvl: {k: [] for k in ("audio", "visual", "audio_visual", "event_av")} for lvl in ("segment", "event")}
    totals = {lvl: {k: np.zeros((c, 3)) for k in ("audio", "visual", "audio_visual", "event_av")} for lvl in per_video}
    for i in range(n):
        pa = [[int(ap[i, s, k] >= st and vp[i, k] >= vt) for s in range(t)] for k in range(c)]
        pv = [[int(vvp[i, s, k] >= st and vp[i, k] >= vt) for s in range(t)] for k in range(c)]
        pav = [[x * y for x, y in zip(a, b)] for a, b in zip(pa, pv)]
        gav = [[x * y for x, y in zip(a, b)] for a, b in zip(ga[i].tolist(), gv[i].tolist())]
        for lvl, fn_counts in (("segment", slow_segment_counts), ("event", slow_event_counts)):
            ca = [fn_counts(pa[k], ga[i, k].tolist()) for k in range(c)]
            cv = [fn_counts(pv[k], gv[i, k].tolist()) for k in range(c)]
            cav = [fn_counts(pav[k], gav[k]) for k in range(c)]
            pooled = [tuple(x + y for x, y in zip(a, b)) for a, b in zip(ca, cv)]
            for key, counts in (("audio", ca), ("visual", cv), ("audio_visual", cav), ("event_av", pooled)):
                per_video[lvl][key].append(slow_mean_f1(counts))
                totals[lvl][key] += np.array(counts)
    out = {}
    for lvl in per_video:
        m = {k: 100 * sum(v) / len(v) for k, v in per_video[lvl].items()}
        m["type_av"] = (m["audio"] + m["visual"] + m["audio_visual"]) / 3
        per_class = {}
        for key, tot in totals[lvl].items():
            per_class[key] = [None if (2 * a + b + d) == 0 else 100 * 2 * a / (2 * a + b + d) for a, b, d in tot]
        out[lvl] = (m, per_class)
    return out


def random_case(rng):
    n = int(rng.integers(1, 7))
    c = int(rng.integers(1, 6))
    t = int(rng.choice([1, 2, 3, 10, 10, 10, 13]))
    # probabilities on a coarse grid so that values equal to the thresholds occur
    grid = np.linspace(0, 1, 5)
    vp = rng.choice(grid, size=(n, c))
    ap = rng.choice(grid, size=(n, t, c))
    vvp = rng.choice(grid, size=(n, t, c))
    density = rng.uniform(0.05, 0.9)
    ga = (rng.random((n, c, t)) < density).astype(np.uint8)
    gv = (rng.random((n, c, t)) < density).astype(np.uint8)
    vt, st = rng.choice(grid[1:4]), rng.choice(grid[1:4])
    return vp, ap, vvp, ga, gv, float(vt), float(st)


def test_vectorised_score_equals_slow_loops_on_random_cases():
    rng = np.random.default_rng(20240605)
    for _ in range(400):
        vp, ap, vvp, ga, gv, vt, st = random_case(rng)
        r = score(vp, ap, vvp, ga, gv, video_threshold=vt, segment_threshold=st)
        ref = slow_score(vp, ap, vvp, ga, gv, vt, st)
        classes = [str(k) for k in range(vp.shape[1])]
        for lvl in ("segment", "event"):
            m, per_class = ref[lvl]
            for key in LEVEL_KEYS:
                assert r[lvl][key] == pytest.approx(m[key], abs=1e-9), (lvl, key)
            for key, values in per_class.items():
                got = [r["per_class"][lvl][key][name] for name in classes]
                for x, y in zip(got, values):
                    assert (x is None and y is None) or x == pytest.approx(y, abs=1e-9), (lvl, key)


def test_event_counts_on_all_pairs_of_many_10_segment_sequences():
    # the event matching on all 40k pairs of 200 random 10-segment sequences (plus all-0 and all-1)
    rng = np.random.default_rng(7)
    seqs = [np.array(s, dtype=bool) for s in itertools.product([0, 1], repeat=10)]
    pick = [seqs[i] for i in rng.choice(len(seqs), size=200, replace=False)] + [seqs[0], seqs[-1]]
    pred = np.array([a for a in pick for _ in pick])
    true = np.array([b for _ in pick for b in pick])
    tp, fp, fn = event_counts(pred, true)
    slow = np.array([slow_event_counts(a.tolist(), b.tolist()) for a, b in zip(pred, true)])
    assert (np.stack([tp, fp, fn], axis=1) == slow).all()
