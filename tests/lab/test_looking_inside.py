"""Training statistics in the run folder, and the HTML report: every image decodes; the
Q·K statistics and the score against distance."""

import base64
import io
import json
import math
from html.parser import HTMLParser

from mixology.lab import report
from mixology.lab.model import preset
from mixology.lab.train import TrainConfig, train
from mixology.spec.lab import tiny_text


def _run(path, **kw):
    cfg = TrainConfig(**{**dict(steps=6, batch_size=4, eval_every=3, eval_windows=4, warmup=1,
                                text=tiny_text()), **kw})
    model = preset("shakespeare-char-cpu", d_model=16, n_heads=2, context=16, n_layers=2)
    return train(model, cfg, path, progress=False)


def test_each_evaluation_records_every_layers_statistics(tmp_path):
    _run(tmp_path / "a", grad_clip=1e-3)  # clips every step
    rows = [json.loads(line) for line in (tmp_path / "a" / "stats.jsonl").read_text()
            .splitlines()]
    assert [r["step"] for r in rows] == [3, 6]
    for r in rows:
        assert len(r["layers"]) == 2 and r["clip_fraction"] == 1.0
        for layer in r["layers"]:
            for key in ("resid_rms", "mix_rms", "ffn_rms", "out_rms", "grad_rms"):
                assert layer[key] > 0, (key, layer)
            assert len(layer["entropy"]) == 2
            assert all(0 <= e <= math.log(16) + 1e-9 for e in layer["entropy"])
            for part in ("mix", "ffn", "out"):  # the probe: 4 windows x 16 tokens x 16 wide
                hist = layer["hist"][part]
                assert sum(hist["counts"]) == 4 * 16 * 16 and hist["lo"] == -hist["hi"] < 0
    _run(tmp_path / "b", stats=False)
    assert (tmp_path / "b" / "stats.jsonl").read_text() == ""


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.spans = [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "span" and "title" in a:
            self.spans += 1


def test_report_is_one_page_whose_images_all_decode(tmp_path):
    import matplotlib.image

    _run(tmp_path / "a")
    _run(tmp_path / "b", optimizer="muon")
    out = report.build([tmp_path / "a", tmp_path / "b"], tmp_path / "r" / "report.html")
    page = out.read_text()
    parser = _Images()
    parser.feed(page)
    assert len(parser.srcs) == 4  # loss curves, 2 x statistics, attention
    for src in parser.srcs:
        head, b64 = src.split(",", 1)
        assert head == "data:image/png;base64"
        img = matplotlib.image.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 100
    assert parser.spans == 16  # one coloured character per validation token (context 16)
    assert len(list((tmp_path / "r").glob("report_*.png"))) == 4
    assert "Samples" in page and page.count("<h3>") == 2


def test_qk_statistics_and_score_by_distance_are_those_of_the_scores():
    import torch

    from mixology.lab import tracing

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 5, 4, generator=g)
    s = (q.double() @ k.double().mT) / 2  # sqrt(d) = 2
    stats = tracing.qk_stats(q, k)
    causal = s[:, 1][:, torch.ones(5, 5, dtype=torch.bool).tril()]
    assert len(stats) == 3 and abs(stats[1]["score_mean"] - float(causal.mean())) < 1e-12
    assert abs(stats[1]["score_max_abs"] - float(causal.abs().max())) < 1e-12
    by = tracing.score_by_distance(q, k)
    assert len(by) == 5 and abs(by[4] - float(s[..., 4, 0].abs().mean())) < 1e-12
    assert abs(by[0] - float(torch.diagonal(s, dim1=-2, dim2=-1).abs().mean())) < 1e-12


def test_rope_shifted_far_keeps_every_score():
    import torch

    from mixology.lab import tracing
    from mixology.ops.positional.reference import rope

    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(1, 2, 6, 8, generator=g, dtype=torch.float64) for _ in range(2))
    long = rope(torch.cat([torch.zeros(1, 2, 5000, 8, dtype=torch.float64), q], dim=2))
    shifted = tracing.rope_shifted(rope(q), 5000)
    assert torch.allclose(shifted, long[:, :, 5000:], atol=1e-9)  # R_{t+P} = R_P R_t
    near = tracing.score_by_distance(rope(q), rope(k))
    far = tracing.score_by_distance(shifted, tracing.rope_shifted(rope(k), 5000))
    assert max(abs(a - b) for a, b in zip(near, far, strict=True)) < 1e-9
