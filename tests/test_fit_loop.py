"""The training loop keeps the device busy: no host sync per step, no step on a NaN loss, device batch rules."""

from __future__ import annotations

import pytest
import torch

from genocnn.config import Config, config_from_dict
from genocnn.data import load_pos_neg
from genocnn.errors import GenocnnError
from genocnn.fit import batch_and_lr, eval_batch_size, fit, make_optimiser, train_step
from genocnn.inference import predict_logits
from genocnn.models import build_model
from genocnn.splits import split_indices
from genocnn.training import kernel_settings


@pytest.fixture(scope="module")
def tiny_data(tiny_fastas):
    return load_pos_neg(*tiny_fastas, length=80)


def _net(tiny_config, tasks=1):
    torch.manual_seed(0)
    return build_model(tiny_config.model, tasks, 80)


def _batch(data, n=32):
    return data.x[:n], data.y[:n]


def _state(model, optimiser):
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}  # BatchNorm statistics move anyway
    moments = {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(optimiser.state.values())}
    return weights, moments


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return torch.equal(a, b)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
def test_train_step_returns_a_device_loss_and_takes_no_step_on_a_nan_loss(tiny_data, tiny_config, fused):
    model = _net(tiny_config)
    optimiser = (make_optimiser(model, 1e-2, 0.1, torch.device("cpu")) if fused
                 else torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1, foreach=True))
    assert getattr(optimiser, "_step_supports_amp_scaling", False) == fused
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x, y = _batch(tiny_data)
    loss = train_step(model, optimiser, scaler, x, y)
    assert isinstance(loss, torch.Tensor) and loss.shape == () and torch.isfinite(loss)
    assert not loss.requires_grad

    before = _state(model, optimiser)
    bad_y = y.clone()
    bad_y[0, 0] = float("inf")  # a label that makes the loss infinite / NaN
    loss = train_step(model, optimiser, scaler, x, bad_y)
    assert not torch.isfinite(loss)
    after = _state(model, optimiser)
    if fused:  # skipped inside the kernel: weights, moments and step count untouched
        assert _same(before, after)
    else:  # zero gradients: the weights stay finite, only momentum and decay move them
        assert all(torch.isfinite(v).all() for v in after[0].values())
    # and the next good batch trains on
    assert torch.isfinite(train_step(model, optimiser, scaler, x, y))


def test_fit_waits_for_the_device_a_fixed_number_of_times_per_epoch(tiny_data, tiny_config, monkeypatch):
    """Host syncs (float(), .item(), .tolist()) do not grow with the number of batches."""
    split = split_indices(tiny_data.y, 0.1, 0.1, 0)
    counts = {}
    for batch_size in (8, 64):
        calls = {"n": 0}
        for name in ("__float__", "item", "tolist", "__bool__"):
            real = getattr(torch.Tensor, name)

            def counted(self, *a, _real=real, **k):
                calls["n"] += 1
                return _real(self, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, counted)
        cfg = tiny_config.replace(training={"epochs": 1, "batch_size": batch_size})
        fit(_net(tiny_config), tiny_data, split, cfg, torch.device("cpu"), progress=False)
        monkeypatch.undo()
        counts[batch_size] = calls["n"]
    assert len(split.train) // 8 > 40  # many more steps at batch 8 ...
    assert counts[8] == counts[64]  # ... and not one more wait for the device


def test_nan_loss_in_fit_names_the_first_bad_batch(tiny_data, tiny_config, monkeypatch):
    import genocnn.fit

    real = genocnn.fit.masked_bce
    calls = {"n": 0}

    def loss(logits, y, pos_weight=None):
        value = real(logits, y, pos_weight)
        if pos_weight is not None:
            calls["n"] += 1
            if calls["n"] in (4, 6):  # batches 4 and 6 of epoch 1
                return value * float("nan")
        return value

    monkeypatch.setattr(genocnn.fit, "masked_bce", loss)
    split = split_indices(tiny_data.y, 0.1, 0.1, 0)
    cfg = tiny_config.replace(training={"epochs": 2, "batch_size": 32})
    with pytest.raises(GenocnnError, match=r"epoch 1, batch 4: the loss is nan \(no epoch kept\)"):
        fit(_net(tiny_config), tiny_data, split, cfg, torch.device("cpu"), progress=False)
    assert calls["n"] == -(-len(split.train) // 32)  # the epoch ran to its end: checked once there


def test_batch_and_lr_rule_and_config():
    cfg = Config().training
    assert (cfg.batch_size, cfg.cuda_batch_size, cfg.amp) == (64, 256, False)
    assert batch_and_lr(cfg, torch.device("cpu")) == (64, 1e-3)
    assert batch_and_lr(cfg, torch.device("mps")) == (64, 1e-3)
    batch, lr = batch_and_lr(cfg, torch.device("cuda"))
    assert batch == 256 and lr == pytest.approx(2e-3)
    mine = config_from_dict({"training": {"batch_size": 32, "cuda_batch_size": 128, "lr": 0.01}}).training
    assert batch_and_lr(mine, torch.device("cuda"))[1] == pytest.approx(0.02)
    off = config_from_dict({"training": {"cuda_batch_size": None}}).training
    assert batch_and_lr(off, torch.device("cuda")) == (64, 1e-3)
    with pytest.raises(GenocnnError, match="cuda_batch_size"):
        config_from_dict({"training": {"cuda_batch_size": 0}})
    assert eval_batch_size(torch.device("cpu"), 200) == 256
    assert eval_batch_size(torch.device("cuda"), 200) == 5242 and eval_batch_size(torch.device("cuda"), 10**6) == 256


def test_predict_logits_on_device_equals_the_chunked_cpu_path(tiny_data, tiny_config):
    model = _net(tiny_config).eval()
    x = tiny_data.x[:100]
    chunked = predict_logits(model, x, batch_size=7)
    whole = predict_logits(model, x, batch_size=4096, on_device=True)
    assert whole.device == torch.device("cpu") and whole.shape == (100, 1)
    torch.testing.assert_close(whole, chunked)
    assert predict_logits(model, x[:0], on_device=True).shape == (0, 1)


def test_kernel_settings_cuda_only_and_restored():
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)
    with kernel_settings(torch.device("cpu")):
        assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark) == before
    with kernel_settings(torch.device("cuda")):  # flags only: no CUDA needed to set them
        # TF32 matmuls; cuDNN's autotuner left off (2.8 s of tuning in the first epoch, nothing gained)
        assert torch.get_float32_matmul_precision() == "high" and not torch.backends.cudnn.benchmark
    assert (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark) == before


def test_kernel_settings_leave_the_deterministic_switch_alone(monkeypatch):
    # the switch imports torch._inductor (seconds) and is not needed for bit-identical CPU training
    def forbidden(*args, **kwargs):
        raise AssertionError("use_deterministic_algorithms called")

    monkeypatch.setattr(torch, "use_deterministic_algorithms", forbidden)
    for device in ("cpu", "cuda"):
        with kernel_settings(torch.device(device)):
            pass
