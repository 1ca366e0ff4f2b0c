import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from genocnn.errors import GenocnnError
from genocnn.checkpoint import load_model
from genocnn.devices import resolve_device
from genocnn.training import train


def test_run_directory_contents(tiny_run):
    d = tiny_run.run_dir
    assert {p.name for p in d.iterdir()} >= {"model.pt", "config.yaml", "history.tsv", "metrics.json"}
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["auroc"] > 0.9 and 0 < metrics["auprc"] <= 1
    history = pd.read_csv(d / "history.tsv", sep="\t")
    assert list(history.columns[:4]) == ["epoch", "train_loss", "valid_loss", "valid_auroc"]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    state = torch.load(d / "model.pt", weights_only=True)
    assert state["length"] == 100 and state["tasks"] == ["bound"]


def test_same_seed_same_weights_on_cpu(tiny_fastas, tiny_config, tmp_path):
    pos, neg = tiny_fastas
    cfg = tiny_config.replace(training={"epochs": 2})
    a = train(pos, neg, tmp_path / "a", cfg, device="cpu", progress=False)
    b = train(pos, neg, tmp_path / "b", cfg, device="cpu", progress=False)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    assert a.metrics == b.metrics


def test_learning_rate_schedules(tiny_fastas, tiny_config, tmp_path):
    pos, neg = tiny_fastas
    plateau = train(pos, neg, tmp_path / "plateau", tiny_config, device="cpu", progress=False,
                    overrides=["training.scheduler=plateau", "training.lr_patience=1", "training.lr_factor=0.5"])
    lr = plateau.history["lr"].to_numpy()
    assert lr[0] == 0.01 and (np.diff(lr) <= 0).all() and lr[-1] < 0.01
    # each cut comes right after an epoch that did not beat the best validation AUROC so far
    auroc = plateau.history["valid_auroc"].to_numpy()
    for i in np.flatnonzero(np.diff(lr) < 0):
        assert auroc[i] <= auroc[:i].max()
    cosine = train(pos, neg, tmp_path / "cosine", tiny_config.replace(training={"epochs": 4, "patience": 10}),
                   device="cpu", progress=False, overrides=["training.scheduler=cosine"])
    expected = 0.01 * 0.5 * (1 + np.cos(np.pi * np.arange(4) / 4))
    np.testing.assert_allclose(cosine.history["lr"], expected, rtol=1e-6)


def test_load_model_round_trip(tiny_run):
    model = load_model(tiny_run.run_dir)
    x = torch.rand(3, 4, 100)
    assert torch.allclose(model(x), tiny_run.model(x), atol=1e-6)
    assert model.tasks == ["bound"] and model.length == 100


def test_load_model_refuses_foreign_and_malicious_files(tmp_path):
    with pytest.raises(GenocnnError, match="not a genocnn run"):
        load_model(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GenocnnError, match="not a readable"):
        load_model(tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(GenocnnError, match="not a genocnn checkpoint"):
        load_model(tmp_path)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"format": Evil()}, tmp_path / "model.pt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(GenocnnError, match="refused"):
        load_model(tmp_path)
    assert not marker.exists()


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    for bad in ("tpu", "cpu:1", "gpu"):
        with pytest.raises(GenocnnError, match="unknown device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(GenocnnError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    "overrides",
    [
        ["training.amp=false"],
        ["training.amp=true", "training.amp_dtype=bfloat16"],
        ["training.amp=true", "training.amp_dtype=float16"],  # with the gradient scaler
        ["training.compile=true"],
    ],
    ids=["fp32", "bf16", "fp16-scaler", "compile"],
)
def test_cuda_training_paths(tiny_fastas, tiny_config, tmp_path, overrides):
    pos, neg = tiny_fastas
    # the CPU's batch: at the CUDA default (256 sequences, 2 steps an epoch here) this tiny set
    # trains to anywhere between 0.65 and 1.0 by seed, so the paths are compared on the CPU's schedule
    run = train(pos, neg, tmp_path / "gpu", tiny_config, device="cuda", progress=False,
                overrides=[*overrides, "training.cuda_batch_size=null"])
    assert run.metrics["auroc"] > 0.9
    # the saved model loads on the CPU and predicts what the trained model predicts
    from genocnn.data import load_pos_neg

    x = load_pos_neg(pos, neg, run.config.data.length).x[:64]
    cpu = load_model(tmp_path / "gpu", device="cpu")
    gpu = load_model(tmp_path / "gpu", device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resume_state_loads_on_cpu(tiny_fastas, tiny_config, tmp_path):
    pos, neg = tiny_fastas
    cfg = tiny_config.replace(training={"epochs": 2, "amp": True, "amp_dtype": "float16"})
    train(pos, neg, tmp_path / "run", cfg, device="cuda", progress=False)
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert state["scaler"] is not None and state["progress"]["epoch"] == 2
