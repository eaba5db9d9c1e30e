"""a2cnn.run_cache: a stopped solution run resumes; a kept run is reused only for exactly the same call."""
import dataclasses

import pytest
import torch
import torch.nn as nn

from a2cnn import finetune, run_cache, training
from coursetools.run_env import run_cache_folder
from test_training import Net, tiny_data

CONFIG = training.TrainConfig(epochs=2, batch_size=2, seed=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("A2_RUN_CACHE", str(tmp_path / "runs"))
    return tmp_path / "runs"


def _train(data, config=CONFIG, **kwargs):
    torch.manual_seed(0)
    model = Net()
    return model, training.train_colourizer(model, data, config, device="cpu", progress=False, log=None, **kwargs)


def _no_training(monkeypatch):
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: pytest.fail("trained again"))


def test_a_finished_run_is_reused_exactly(cache, monkeypatch):
    data = tiny_data()
    first_model, first = _train(data)
    assert len(list(cache.glob("*.json"))) == 1 and len(list(cache.glob("*.safetensors"))) == 1
    _no_training(monkeypatch)
    again_model, again = _train(data)
    assert again == first
    assert all(torch.equal(v, again_model.state_dict()[k]) for k, v in first_model.state_dict().items())


@pytest.mark.parametrize("change", ["config", "data", "initial weights"])
def test_anything_the_run_depends_on_changing_trains_again(cache, change):
    data = tiny_data()
    _train(data)
    if change == "config":
        _train(data, dataclasses.replace(CONFIG, learn_rate=2e-3))
    elif change == "data":
        data.x_test = data.x_test.copy()
        data.x_test[0, 0, 0, 0] += 1e-3
        _train(data)
    else:
        torch.manual_seed(5)
        training.train_colourizer(Net(), data, CONFIG, device="cpu", progress=False, log=None)
    assert len(list(cache.glob("*.json"))) == 2


def test_a_run_stopped_half_way_is_not_kept_and_the_rerun_equals_an_uninterrupted_one(cache, tmp_path, monkeypatch):
    data = tiny_data()

    def stop_after_the_first_epoch(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        torch.manual_seed(0)
        training.train_colourizer(Net(), data, CONFIG, device="cpu", progress=False, log=stop_after_the_first_epoch)
    assert list(cache.glob("*.json")) == []
    _, resumed = _train(data)
    monkeypatch.setenv("A2_RUN_CACHE", str(tmp_path / "elsewhere"))
    _, uninterrupted = _train(data)
    assert (resumed.val_loss, resumed.train_loss) == (uninterrupted.val_loss, uninterrupted.train_loss)


def test_nothing_is_kept_without_the_variable_or_when_the_caller_says_so(tmp_path, monkeypatch, cache):
    _train(tiny_data(), cache=False)  # the grader measures this way: never from a kept run
    assert not cache.exists() or list(cache.iterdir()) == []
    monkeypatch.delenv("A2_RUN_CACHE")
    _train(tiny_data())
    assert not cache.exists() or list(cache.iterdir()) == []


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)
        self.classifier = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        return {"out": self.classifier(self.backbone(x))}


class Pictures(torch.utils.data.Dataset):
    """Stands in for FlowerSegmentation: what the key reads (indices, size, mask source) and items."""

    def __init__(self, n=6, size=8):
        self.indices, self.size, self.mask_source = list(range(1, n + 1)), size, "synthetic-demo"
        generator = torch.Generator().manual_seed(0)
        self.items = [(torch.randn(3, size, size, generator=generator), torch.randint(0, 2, (size, size), generator=generator))
                      for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _finetune(loader):
    torch.manual_seed(0)
    model = Segmenter()
    optimizer = torch.optim.Adam(model.classifier.parameters(), lr=1e-2)
    return model, finetune.run_finetune_epochs(model, loader, optimizer, 2, "cpu", progress=False)


def test_fine_tuning_resumes_too(cache, monkeypatch):
    def loader():
        return torch.utils.data.DataLoader(Pictures(), batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(0))

    model, losses = _finetune(loader())
    steps = []
    monkeypatch.setattr(torch.optim.Adam, "step", lambda *a, **k: steps.append(1))
    again_model, again = _finetune(loader())
    assert again == losses and steps == []
    assert all(torch.equal(v, again_model.state_dict()[k]) for k, v in model.state_dict().items())


def test_a_loader_that_cannot_be_described_always_trains(cache):
    batches = [(torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8)))]
    _finetune(batches)
    assert not cache.exists() or list(cache.glob("*.json")) == []


def test_keys_compare_content():
    a = {"w": torch.ones(2), "n": [1, "x"]}
    assert run_cache.key(a) == run_cache.key({"n": [1, "x"], "w": torch.ones(2)})
    assert run_cache.key(a) != run_cache.key({"w": torch.ones(2, dtype=torch.float64), "n": [1, "x"]})
    assert run_cache.key(a) != run_cache.key({"w": torch.tensor([1.0, 1.5]), "n": [1, "x"]})
    assert run_cache.key(torch.zeros(2, 3)) != run_cache.key(torch.zeros(3, 2))
    assert run_cache.key(torch.tensor(3)) != run_cache.key(torch.tensor(4))


def test_solve_keeps_runs_in_full_mode_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "cache"))
    folder = run_cache_folder("full")
    assert folder == tmp_path / "cache" / "solve-full" and folder.is_dir()
    (folder / "kept.json").write_text("{}")
    assert run_cache_folder("full") == folder and (folder / "kept.json").exists()
    assert run_cache_folder("full", fresh=True) == folder and not (folder / "kept.json").exists()
    assert run_cache_folder("fast") is None and run_cache_folder("full", "none") is None
    assert run_cache_folder("fast", str(tmp_path / "mine")) == tmp_path / "mine"
