"""A module tree as plain data: each module's vocabulary type, defining attributes, own parameters and buffers."""
from .vocabulary import LAYERS, classes, plain

_type, _getattr, _len = type, getattr, len  # bound before any student code runs
MAX_NODES = 400
MAX_DEPTH = 8


def _names(store) -> list:
    try:
        return [str(k) for k, v in dict(store).items() if v is not None][:64]
    except Exception:  # noqa: BLE001 - a student module with a strange parameter store
        return []


def describe(module, known=None, _budget=None, _depth=0) -> dict:
    """``{"type", "class", "attrs", "params", "buffers", "children": [[name, node], ...]}``; ``type`` is a
    vocabulary name or ``"other"`` (then ``class`` is the class name, for messages only)."""
    known = classes() if known is None else known
    budget = [MAX_NODES] if _budget is None else _budget
    budget[0] -= 1
    cls = _type(module)
    name = known.get(cls)
    node = {"type": name or "other", "class": str(_getattr(cls, "__name__", "?"))[:40], "attrs": {},
            "params": _names(_getattr(module, "_parameters", {})),
            "buffers": _names(_getattr(module, "_buffers", {})), "children": []}
    if name is not None:
        for attr in LAYERS[name][2]:
            try:
                node["attrs"][attr] = plain(_getattr(module, attr))
            except Exception:  # noqa: BLE001 - unreadable or unsupported value: the layer cannot be rebuilt
                node["type"] = "other"
    if _depth >= MAX_DEPTH or budget[0] <= 0:
        node["truncated"] = True
        return node
    try:
        children = list(dict(_getattr(module, "_modules", {})).items())
    except Exception:  # noqa: BLE001
        children = []
    for child_name, child in children[:64]:
        if child is None or budget[0] <= 0:
            continue
        node["children"].append([str(child_name)[:40], describe(child, known, budget, _depth + 1)])
    return node
