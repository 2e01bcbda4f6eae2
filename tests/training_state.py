"""A small model and optimizer with state to save, and a check that a loaded state equals the saved one."""

import torch


def model_and_optimizer(seed: int, width: int = 64):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(8, width)).pow(2).mean().backward()
    optimizer.step()  # the optimizer now has state tensors to save and to load into
    return model, optimizer


def assert_nested_equal(expected, actual, where="state") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(expected) == set(actual), where
        for key in expected:
            assert_nested_equal(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(expected) == len(actual), where
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_nested_equal(e, a, f"{where}[{i}]")
    elif isinstance(expected, torch.Tensor):
        assert torch.equal(expected, actual), where
    else:
        assert expected == actual, where
