"""Variable-length videos: a video's numbers do not depend on how far its batch is padded.

For both backbones, in eval mode without dropout: a video scored alone equals the same video in a padded
batch; every loss of a batch is the same whether the batch is padded further or not; padded segments get
no pseudo mask, no prediction and no say in the metrics; load_features pads and reports lengths.
"""

import math

import numpy as np
import pytest
import torch

from ecma.config import config_from_dict
from ecma.data.batching import bucketed_order, crop_windows, mask_beyond_lengths, padding_fraction, segment_mask
from ecma.data.shards import FeatureShard, load_features
from ecma.errors import EcmaError
from ecma.evaluation.inference import run_model
from ecma.evaluation.metrics import score
from ecma.models.factory import build_network
from ecma.models.coleaf.network import AudioOnlyNet, VisualOnlyNet
from ecma.models.coleaf.losses import aux_audio_loss, aux_visual_loss, coleaf_main_loss, segment_nce_loss
from ecma.models.han.losses import avvp_loss
from ecma.models.layers import smooth_labels
from ecma.training.losses import cma_loss, pseudo_loss
from ecma.training.pseudo_masks import pseudo_masks

DA, DV, K, C = 6, 5, 2, 4


def small_cfg(backbone: str):
    return config_from_dict({"model": {
        "backbone": backbone, "audio_dim": DA, "visual_dim": DV, "visual_frames_per_segment": K, "num_classes": C,
        "d_model": 8, "num_heads": 2, "d_ff": 16, "num_layers": 2,
        "dropout": 0.0, "classifier_dropout": 0.0, "interaction_dropout": 0.0,
    }, "train": {"variant": "ecma" if backbone == "coleaf" else "han_ecma"}})


def videos(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(t, DA, generator=g), torch.randn(t * K, DV, generator=g)) for t in lengths]


def padded(vids, t):
    """A batch of ``vids`` padded with zero segments to ``t``, and its mask."""
    audio = torch.zeros(len(vids), t, DA)
    visual = torch.zeros(len(vids), t * K, DV)
    for i, (a, v) in enumerate(vids):
        audio[i, : len(a)], visual[i, : len(v)] = a, v
    lengths = torch.tensor([len(a) for a, _ in vids])
    return audio, visual, torch.arange(t)[None, :] < lengths[:, None]


def network(backbone):
    torch.manual_seed(0)
    return build_network(small_cfg(backbone)).eval()


@pytest.mark.parametrize("backbone", ["han", "coleaf"])
def test_a_video_alone_equals_it_in_a_padded_batch(backbone):
    net = network(backbone)
    vids = videos([3, 7, 5])
    audio, visual, mask = padded(vids, 9)  # padded beyond the longest, too
    with torch.no_grad():
        batch = net(audio, visual, None, mask)
        for i, (a, v) in enumerate(vids):
            alone = net(a[None], v[None])
            t = len(a)
            for name in ("video_prob", "a_prob", "v_prob"):
                torch.testing.assert_close(getattr(batch, name)[i], getattr(alone, name)[0], atol=1e-5, rtol=0)
            for name in ("segment_prob", "audio_emb", "visual_emb"):
                torch.testing.assert_close(getattr(batch, name)[i, :t], getattr(alone, name)[0], atol=1e-5, rtol=0)
                assert (getattr(batch, name)[i, t:] == 0).all()  # padded segments: no output
    # and the mask matters: without it the padding changes the short video's numbers
    with torch.no_grad():
        unmasked = net(audio, visual)
        alone = net(vids[0][0][None], vids[0][1][None])
    assert not torch.allclose(unmasked.video_prob[0], alone.video_prob[0], atol=1e-5)


def _han_losses(net, audio, visual, mask, y):
    out = net(audio, visual, None, mask)
    masks = pseudo_masks(out.segment_prob, y, lengths=None if mask is None else mask.sum(1))
    return {"avvp": avvp_loss(out, y), "pseudo": pseudo_loss(out.segment_prob, masks),
            "cma": cma_loss(out, y, 0.0, 0.0), "mask_sum": masks.sum()}


def _coleaf_losses(net, audio, visual, mask, y):
    cfg = small_cfg("coleaf")
    torch.manual_seed(1)
    aux_a_net, aux_v_net = AudioOnlyNet(cfg.model).eval(), VisualOnlyNet(cfg.model).eval()
    out = net.from_inputs(net.embed_inputs(audio, visual, None, mask), passes="mixed")
    aux_a, aux_v = aux_a_net(audio, mask), aux_v_net(visual, None, mask)
    pa, pv = smooth_labels(y, 0.0), smooth_labels(y, 0.1)
    lc = cfg.coleaf
    terms = coleaf_main_loss(out, y, pa, pv, aux_a, aux_v, lc, epoch=5, step=1)  # every term switched on
    masks = pseudo_masks(out.segment_prob, y, lengths=None if mask is None else mask.sum(1))
    losses = {name: getattr(terms, name) for name in ("total", "audio", "visual", "video", "nce", "mutual",
                                                      "cooccurrence_audio", "cooccurrence_visual", "aux_nce_audio", "aux_nce_visual")}
    losses.update(aux_audio=aux_audio_loss(aux_a, pa, out.a_prob, 5, lc), aux_visual=aux_visual_loss(aux_v, pv, out.v_prob, 5, lc),
                  pseudo=pseudo_loss(out.segment_prob, masks), cma=cma_loss(out, y, 0.0, 0.0), mask_sum=masks.sum())
    return losses


@pytest.mark.parametrize("backbone", ["han", "coleaf"])
@pytest.mark.parametrize("lengths", [(3, 5), (5, 5)])
def test_losses_do_not_change_when_a_batch_is_padded_further(backbone, lengths):
    net = network(backbone)
    vids = videos(lengths, seed=2)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    losses = _han_losses if backbone == "han" else _coleaf_losses
    with torch.no_grad():
        tight = padded(vids, max(lengths))
        base = losses(net, tight[0], tight[1], None if min(lengths) == max(lengths) else tight[2], y)
        wide = losses(net, *padded(vids, max(lengths) + 4), y)
    assert base.keys() == wide.keys()
    for name in base:
        torch.testing.assert_close(wide[name], base[name], atol=1e-5, rtol=1e-5, msg=name)
    assert base["cma"] > 0 and base["pseudo"] > 0 and base["mask_sum"] > 0  # the terms are live


@pytest.mark.parametrize("rule", ["adaptive", "topk"])
def test_pseudo_masks_of_padded_segments_are_zero_and_real_ones_as_alone(rule):
    g = torch.Generator().manual_seed(3)
    seg = torch.rand(2, 6, 2, C, generator=g)
    y = torch.ones(2, C)
    lengths = torch.tensor([2, 6])
    seg[0, 2:] = 0.9  # padding that would win the top k and raise the mean if it counted
    masks = pseudo_masks(seg, y, rule=rule, k=3, lengths=lengths)
    assert (masks[0, 2:] == 0).all()
    alone = pseudo_masks(seg[:1, :2], y[:1], rule=rule, k=3)
    torch.testing.assert_close(masks[0, :2], alone[0])
    # the adaptive threshold by hand: the mean over the two real segments only
    if rule == "adaptive":
        fused = seg[0, :2].mean(dim=1)
        torch.testing.assert_close(masks[0, :2], (fused >= fused.mean(dim=0)).float())


def test_segment_nce_with_a_mask_by_hand():
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    lengths, tau, eps = [3, 5], 0.2, 0.1
    mask = torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]
    total, count = 0.0, 0
    for b, t in enumerate(lengths):  # plain math over each video's real segments
        qn = [x / x.norm() for x in q[b, :t]]
        kn = [x / x.norm() for x in k[b, :t]]
        for i in range(t):
            s = [math.exp(float(qn[i] @ kn[j]) / tau) for j in range(t)]
            p = [x / sum(s) for x in s]
            m = [(1 - eps) if j == i else eps / (t - 1) for j in range(t)]
            total += math.log(sum(pi * mi for pi, mi in zip(p, m)))
            count += 1
    assert segment_nce_loss(q, k, tau, eps, mask=mask).item() == pytest.approx(-total / count, rel=1e-5)


def test_metrics_ignore_the_padded_tail():
    # two videos of T = 3 and T = 5, padded to 5, one class; the short one predicts in its padding
    video_prob = np.ones((2, 1))
    prob = np.zeros((2, 5, 1))
    prob[0, 0:2, 0] = 0.9  # short video: true positives at 0, 1
    prob[0, 4, 0] = 0.9  # ... and a prediction in its padded tail
    prob[1, 2:5, 0] = 0.9  # long video: exactly its truth
    gt = np.zeros((2, 1, 5), dtype=np.uint8)
    gt[0, 0, 0:2] = 1
    gt[1, 0, 2:5] = 1
    with_lengths = score(video_prob, prob, prob, gt, gt, lengths=np.array([3, 5]))
    without = score(video_prob, prob, prob, gt, gt)
    # with lengths both videos are perfect; without, the short one has 2 TP and 1 FP: F1 = 4 / 5, and its
    # prediction at 4 is a second (unmatched) event: event F1 = 2 * 1 / (2 * 1 + 1) = 2 / 3
    assert with_lengths["segment"]["audio"] == pytest.approx(100.0)
    assert with_lengths["event"]["audio"] == pytest.approx(100.0)
    assert without["segment"]["audio"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    assert without["event"]["audio"] == pytest.approx(100 * (2 / 3 + 1.0) / 2)
    with pytest.raises(ValueError, match="lengths must be"):
        score(video_prob, prob, prob, gt, gt, lengths=np.array([3, 6]))


def test_mask_beyond_lengths_and_segment_mask():
    x = np.ones((2, 1, 4))
    out = mask_beyond_lengths(x, np.array([2, 4]), 2)
    assert out[0, 0].tolist() == [1, 1, 0, 0] and out[1, 0].tolist() == [1, 1, 1, 1]
    assert segment_mask(torch.tensor([4, 4]), 4) is None
    assert segment_mask(torch.tensor([1, 3]), 3).tolist() == [[True, False, False], [True, True, True]]


def _shard(path, items, fingerprint=None):
    with FeatureShard(path, "w") as s:
        s.fingerprint = fingerprint or {"enc": "x"}
        for name, t, da in items:
            s.write(name, np.full((t, da), t, dtype=np.float32), np.full((t * 2, 3), -t, dtype=np.float32), frames_per_segment=2)
    return path


def test_load_features_pads_and_reports_lengths(tmp_path):
    a = _shard(tmp_path / "a.h5", [("v3", 3, 4), ("v5", 5, 4)])
    b = _shard(tmp_path / "b.h5", [("v2", 2, 4)])
    fs = load_features([a, b], ["v5", "v2", "v3"])
    assert fs.lengths.tolist() == [5, 2, 3] and fs.lengths.dtype == np.int64 and fs.variable_length
    assert fs.audio.shape == (3, 5, 4) and fs.visual.shape == (3, 10, 3)
    assert (fs.audio[1, :2] == 2).all() and (fs.audio[1, 2:] == 0).all()
    assert (fs.visual[2, :6] == -3).all() and (fs.visual[2, 6:] == 0).all()
    # equal lengths: every video full, the old shape
    same = load_features([a], ["v5"])
    assert same.lengths.tolist() == [5] and not same.variable_length
    c = _shard(tmp_path / "c.h5", [("wide", 4, 7)])
    with pytest.raises(EcmaError, match=r"c.h5: video 'wide' has audio \(4, 7\).*but video 'v5' in .*a.h5 has \(5, 4\)"):
        load_features([a, c], ["v5", "wide"])


@pytest.mark.parametrize("backbone", ["han", "coleaf"])
def test_run_model_batches_by_length_and_returns_the_input_order(backbone):
    net = network(backbone)
    lengths = np.array([4, 2, 7, 3, 7, 1])
    audio, visual, _ = padded(videos(lengths.tolist(), seed=5), 7)
    out = run_model(net, audio.numpy(), visual.numpy(), batch_size=2, device=torch.device("cpu"), lengths=lengths)
    with torch.no_grad():
        for i, t in enumerate(lengths):
            alone = net(audio[i : i + 1, :t], visual[i : i + 1, : t * K])
            np.testing.assert_allclose(out.video_prob[i], alone.video_prob[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(out.audio_prob[i, :t], alone.audio_prob[0].numpy(), atol=1e-5)
            assert (out.audio_prob[i, t:] == 0).all() and (out.visual_prob[i, t:] == 0).all()


def test_bucketing_keeps_every_video_once_and_cuts_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 100, (103,), generator=g)
    order = torch.randperm(103, generator=g)
    bucketed = bucketed_order(order, lengths, 8, 4, g)
    assert sorted(bucketed.tolist()) == list(range(103))
    as_batches = lambda o: [o[i : i + 8].numpy() for i in range(0, 103, 8)]  # noqa: E731
    assert padding_fraction(lengths.numpy(), as_batches(bucketed)) < padding_fraction(lengths.numpy(), as_batches(order))
    same = torch.full((103,), 10)
    assert torch.equal(bucketed_order(order, same, 8, 4, g), order)  # equal lengths: order unchanged


def test_crop_windows_take_a_window_of_each_long_video():
    t, k = 6, 2
    audio = torch.arange(2 * t, dtype=torch.float32).view(2, t, 1)
    visual = torch.arange(2 * t * k, dtype=torch.float32).view(2, t * k, 1)
    lengths = torch.tensor([6, 2])
    a, v, v3, m, lb = crop_windows(audio, visual, None, None, lengths, 3, torch.Generator().manual_seed(0))
    start = int(a[0, 0, 0])
    assert a[0, :, 0].tolist() == [start, start + 1, start + 2] and 0 <= start <= 3
    assert v[0, :, 0].tolist() == list(range(2 * start, 2 * start + 6))  # the same segments' frames
    assert a[1, :, 0].tolist() == [6, 7, 8] and lb.tolist() == [3, 2] and v3 is None and m is None


def _varlen_split(n, lengths, rng, truth):
    from ecma.data.shards import FeatureSet
    from ecma.data.splits import SplitData

    t = int(max(lengths))
    audio = np.zeros((n, t, DA), np.float32)
    visual = np.zeros((n, t * K, DV), np.float32)
    for i, length in enumerate(lengths):
        audio[i, :length] = rng.standard_normal((length, DA))
        visual[i, : length * K] = rng.standard_normal((length * K, DV))
    labels = (rng.random((n, C)) < 0.5).astype(np.float32)
    data = SplitData(FeatureSet([f"v{i}" for i in range(n)], audio, visual, {}, [], None, K, np.array(lengths)), labels)
    if truth:
        data.gt_audio = mask_beyond_lengths((rng.random((n, C, t)) < 0.3).astype(np.uint8), np.array(lengths), 2)
        data.gt_visual = mask_beyond_lengths((rng.random((n, C, t)) < 0.3).astype(np.uint8), np.array(lengths), 2)
    return data


@pytest.mark.parametrize("backbone", ["han", "coleaf"])
def test_training_on_variable_length_videos(tmp_path, backbone):
    from ecma.models.checkpoint import load_model
    from ecma.training.train import train

    rng = np.random.default_rng(0)
    train_data = _varlen_split(12, rng.integers(1, 9, 12).tolist(), rng, False)
    val_data = _varlen_split(5, [2, 8, 3, 5, 1], rng, True)
    raw = small_cfg(backbone).to_dict()
    raw["train"].update(epochs=2, batch_size=4, bucket_batches=2, max_segments=6, threads=1)
    raw["pseudo"] = {"warmup_epochs": 0}
    raw["coleaf"] = {"denoise": False}  # the shipped noise ratios are for 25 classes
    cfg = config_from_dict(raw)
    classes = ["a", "b", "c", "d"]
    result = train(cfg, train_data, val_data, tmp_path / "run", classes=classes, fingerprint={}, progress=False)
    assert len(result.history) == 2 and all(math.isfinite(h["loss"]) for h in result.history)
    assert result.history[-1]["mask_density"] > 0
    model, _, payload = load_model(tmp_path / "run" / "model.pt")
    assert payload["classes"] == classes
    with pytest.raises(EcmaError, match="the dataset has 3 classes but model.num_classes is 4"):
        train(cfg, train_data, val_data, tmp_path / "bad", classes=classes[:3], fingerprint={}, progress=False)


def test_predictions_keep_lengths_and_evaluation_ignores_the_padding(tmp_path):
    from ecma.evaluation.evaluate import evaluate_predictions
    from ecma.evaluation.predictions import Predictions, read_predictions, write_predictions

    prob = np.zeros((2, 5, 1), np.float32)
    prob[0, 0:2] = prob[1, 2:5] = prob[0, 4] = 0.9  # the short video's prediction at 4 is in its padding
    preds = Predictions(["short", "long"], ["x"], np.ones((2, 1), np.float32), prob, prob, lengths=np.array([3, 5]))
    write_predictions(tmp_path / "p.h5", preds)
    back = read_predictions(tmp_path / "p.h5")
    assert back.lengths.tolist() == [3, 5]
    gt = np.zeros((2, 1, 5), np.uint8)
    gt[0, 0, 0:2] = gt[1, 0, 2:5] = 1
    r = evaluate_predictions(back, ["long", "short"], gt[::-1], gt[::-1], split="test")
    assert r["segment"]["audio"] == pytest.approx(100.0) and r["split"] == "test"
    old = Predictions(["a"], ["x"], np.ones((1, 1), np.float32), prob[:1], prob[:1])
    write_predictions(tmp_path / "old.h5", old)
    assert read_predictions(tmp_path / "old.h5").lengths is None  # files without lengths: all T
    bad = Predictions(["a"], ["x"], np.ones((1, 1), np.float32), prob[:1], prob[:1], lengths=np.array([6]))
    with pytest.raises(EcmaError, match="lengths must be"):
        write_predictions(tmp_path / "bad.h5", bad)


def test_row_gather_reuses_one_buffer_and_refuses_a_larger_batch():
    from ecma.data.batching import RowGather

    source = torch.arange(6 * 2 * 3, dtype=torch.float32).view(6, 2, 3)
    gather = RowGather(source, max_rows=4)
    first = gather(torch.tensor([5, 0, 3]))
    assert torch.equal(first, source[[5, 0, 3]])
    pointer = first.data_ptr()
    second = gather(torch.tensor([1, 2, 4, 0]))  # the next step's batch, in the same memory
    assert torch.equal(second, source[[1, 2, 4, 0]]) and second.data_ptr() == pointer
    last = gather(torch.tensor([2]))  # a short last batch
    assert last.shape == (1, 2, 3) and torch.equal(last[0], source[2])
    with pytest.raises(ValueError, match="5 rows"):
        gather(torch.arange(5))
