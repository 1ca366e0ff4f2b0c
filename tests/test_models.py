import pytest
import torch

from genocnn.config import config_from_dict, load_config
from genocnn.errors import GenocnnError
from genocnn.models import build_model, output_length


def test_output_shape_and_rc_average_is_strand_symmetric():
    torch.manual_seed(0)
    net = build_model(load_config("default").model, n_tasks=3, length=200).eval()
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (5, 200)), 4).permute(0, 2, 1).float()
    out = net(x)
    assert out.shape == (5, 3)
    assert torch.allclose(out, net(x.flip(-2, -1)), atol=1e-5)


def test_batch_size_invariance():
    torch.manual_seed(0)
    net = build_model(load_config("basset").model, 1, 300).eval()
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (8, 300)), 4).permute(0, 2, 1).float()
    together = net(x)
    single = torch.cat([net(x[i : i + 1]) for i in range(8)])
    assert torch.allclose(together, single, atol=1e-5)


def test_exp_activation_and_flatten_head():
    cfg = config_from_dict({"model": {"conv": [{"activation": "exp", "pool_size": 10}], "global_pool": "none"}})
    net = build_model(cfg.model, 2, 100).eval()
    assert net(torch.zeros(1, 4, 100)).shape == (1, 2)
    assert output_length(cfg.model, 100) == 9


def test_too_short_input_is_a_user_error():
    with pytest.raises(GenocnnError, match="receptive field"):
        build_model(load_config("basset").model, 1, 10)


def test_first_layer_activation_windows():
    net = build_model(load_config("deepbind").model, 1, 100).eval()
    k = net.first_conv.kernel_size[0]
    assert net.first_layer_activations(torch.zeros(2, 4, 100)).shape == (2, net.first_conv.out_channels, 100 - k + 1)


def test_pooled_dropout_drops_whole_filters_in_training_only():
    cfg = config_from_dict({"model": {"pooled_dropout": 0.4, "conv": [{"dropout": 0.0}]}})
    torch.manual_seed(0)
    net = build_model(cfg.model, 2, 200)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (64, 200)), 4).permute(0, 2, 1).float()
    seen = []
    net.head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    net.eval()
    pooled = net.global_pool(net.blocks[0](x))  # (64, F, 1): each filter's strongest match
    assert torch.equal(net.strand_logits(x), net.strand_logits(x))  # no dropout at inference
    torch.testing.assert_close(seen[-1], pooled)
    net.train()
    net.strand_logits(x)
    dropped = seen[-1] == 0
    kept = ~dropped & (pooled != 0)
    assert 0.3 < dropped.float().mean() < 0.5  # about 40 % of (sequence, filter) pairs
    torch.testing.assert_close(seen[-1][kept], pooled[kept] / 0.6)  # the rest rescaled
    with pytest.raises(GenocnnError, match="pooled_dropout"):
        config_from_dict({"model": {"pooled_dropout": 1.0}})
