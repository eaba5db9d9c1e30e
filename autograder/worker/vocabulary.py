"""The layer types a model description may name, with the attributes that define each.

The worker describes a module by its exact type (a subclass with a forward of its own is *not* its base type)
and these attributes; the parent rebuilds the same layer from them with its own, untouched classes and checks that
it computes what the worker reports. A module of any other type is described as ``"other"`` and cannot be rebuilt.
"""
import importlib

# name -> (module, class, attributes read from the instance and passed back to the constructor)
LAYERS = {
    "MyConv2d": ("a2cnn.layers", "MyConv2d", ("in_channels", "out_channels", "kernel_size", "padding")),
    "Conv2d": ("torch.nn", "Conv2d", ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                                      "groups", "padding_mode")),
    "BatchNorm2d": ("torch.nn", "BatchNorm2d", ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "ReLU": ("torch.nn", "ReLU", ("inplace",)),
    "LeakyReLU": ("torch.nn", "LeakyReLU", ("negative_slope", "inplace")),
    "ELU": ("torch.nn", "ELU", ("alpha", "inplace")),
    "GELU": ("torch.nn", "GELU", ("approximate",)),
    "Sigmoid": ("torch.nn", "Sigmoid", ()),
    "Tanh": ("torch.nn", "Tanh", ()),
    "Identity": ("torch.nn", "Identity", ()),
    "Dropout": ("torch.nn", "Dropout", ("p", "inplace")),
    "Dropout2d": ("torch.nn", "Dropout2d", ("p", "inplace")),
    "MaxPool2d": ("torch.nn", "MaxPool2d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                            "return_indices")),
    "AvgPool2d": ("torch.nn", "AvgPool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                            "divisor_override")),
    "Upsample": ("torch.nn", "Upsample", ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")),
    "UpsamplingNearest2d": ("torch.nn", "UpsamplingNearest2d", ("size", "scale_factor")),
    "UpsamplingBilinear2d": ("torch.nn", "UpsamplingBilinear2d", ("size", "scale_factor")),
    "Sequential": ("torch.nn", "Sequential", ()),
}
CONVOLUTIONS = ("MyConv2d", "Conv2d")


def layer_class(name: str):
    module, cls, _attrs = LAYERS[name]
    return getattr(importlib.import_module(module), cls)


def classes() -> dict:
    """{class object: vocabulary name} for the classes importable here."""
    found = {}
    for name in LAYERS:
        try:
            found[layer_class(name)] = name
        except (ImportError, AttributeError):
            continue
    return found


def plain(value, depth: int = 0):
    """An attribute value as JSON (numbers, strings, booleans, None, lists of those), or raise ValueError."""
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) or len(value) <= 40 else value[:40]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (tuple, list)) and depth == 0 and len(value) <= 8:
        return [plain(v, depth + 1) for v in value]
    raise ValueError(f"attribute of type {type(value).__name__}")
