"""What a probe collects: tensors under string keys (sent as safetensors) and plain facts, within a size budget."""
import torch

_isinstance, _len = isinstance, len


class Recording:
    def __init__(self, budget_bytes: int):
        self.tensors: dict = {}
        self.budget = int(budget_bytes)
        self.used = 0
        self.full = False

    def put(self, key: str, value) -> bool:
        """Keep a detached, contiguous CPU copy of ``value`` under ``key``; False if it is not a tensor or the
        budget is spent (then ``full`` is set and nothing more is kept)."""
        if self.full or not _isinstance(value, torch.Tensor) or _len(key) > 300:
            return False
        try:
            tensor = value.detach().to("cpu").clone().contiguous()
        except Exception:  # noqa: BLE001 - a tensor subclass that will not copy
            return False
        size = tensor.element_size() * tensor.nelement()
        if self.used + size > self.budget:
            self.full = True
            return False
        self.used += size
        self.tensors[key] = tensor
        return True

    def state(self, prefix: str, module) -> list:
        """Every tensor of ``module.state_dict()`` under ``prefix/``; returns the names kept."""
        names = []
        for name, tensor in module.state_dict().items():
            if self.put(f"{prefix}/{name}", tensor):
                names.append(str(name))
        return names
