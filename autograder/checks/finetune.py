"""Checks of Part C: ``freeze_and_replace(model)`` and ``train(model, train_loader, epochs, learn_rate, device)``.

The model is torchvision's DeepLabV3 with random weights (no download: ``weights=None, weights_backbone=None``).
ResNet-50 rather than ResNet-101: on 2 CPU cores (unloaded) ResNet-50 builds in ~0.5 s, runs a 1x3x64x64
forward in ~1 s and one fine-tuning step on 2x3x64x64 in ~0.5 s; ResNet-101 took ~0.7 s, ~2.4 s and ~3 s.
Both end in the same ``classifier.4 = Conv2d(256, 21, 1)``. It is built once per process (a child grades one
part) and every check works on its own deep copy, so no check sees another's (or the student's) changes.

The two ``train`` checks run the student's ``train`` on a model the grader froze and re-headed itself, so that a
wrong ``freeze_and_replace`` costs only the two checks about ``freeze_and_replace``. The two checks of each
function share one call of it (see :func:`_cached`).
"""
import copy
import importlib

import torch
import torch.nn as nn

from autograder.checks.base import CheckFailed, describe_exception, guarded, passed
from autograder.checks.cnn import one_thread

SEED = 0
HEAD = "classifier.4"
HEAD_PARAMS = ("classifier.4.weight", "classifier.4.bias")
PRETRAINED_CLASSES = 21
TRAIN_KWARGS = {"epochs": 1, "learn_rate": 1e-2, "device": "cpu"}
LOOP_NAME = "run_finetune_epochs"

_PRISTINE = []  # [model]: built on first use


def pristine_deeplab():
    """The grader's own DeepLabV3-ResNet50 (random weights, 21 classes, eval mode); never handed out."""
    if not _PRISTINE:
        from torchvision.models.segmentation import deeplabv3_resnet50

        torch.manual_seed(SEED)
        model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=PRETRAINED_CLASSES,
                                   aux_loss=False)
        head = model.classifier[4]
        assert isinstance(head, nn.Conv2d) and (head.in_channels, head.out_channels) == (256, PRETRAINED_CLASSES)
        _PRISTINE.append(model.eval())
    return _PRISTINE[0]


def fresh_deeplab():
    return copy.deepcopy(pristine_deeplab())


def grader_prepared_model():
    """A fresh copy frozen and re-headed the reference way (for the checks of ``train``)."""
    model = fresh_deeplab()
    model.requires_grad_(False)
    torch.manual_seed(SEED + 1)
    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)
    return model


def tiny_loader():
    """One batch: 2 images 3x64x64 and their int64 masks in {0, 1}."""
    generator = torch.Generator().manual_seed(SEED)
    images = torch.randn(2, 3, 64, 64, generator=generator)
    masks = torch.randint(0, 2, (2, 64, 64), generator=generator, dtype=torch.int64)
    return [(images, masks)]


def _student_function(ns, name, cell):
    func = ns.get(name)
    if func is None:
        raise CheckFailed(f"no function {name} is defined (it belongs in the cell '{cell}')")
    if not callable(func):
        raise CheckFailed(f"{name} should be a function, found {type(func).__name__}")
    return func


def student_prepared_model(ns):
    """``(model, note)``: the student's ``freeze_and_replace`` applied to a fresh copy (once per namespace)."""
    return _cached("prepared", ns, "freeze_and_replace", _student_prepared_model)


def _student_prepared_model(ns):
    freeze_and_replace = _student_function(ns, "freeze_and_replace", "finetune_setup")
    model = fresh_deeplab()
    torch.manual_seed(SEED + 1)
    try:
        result = freeze_and_replace(model)
    except (Exception, SystemExit) as error:
        raise CheckFailed(f"freeze_and_replace(model) raised {describe_exception(error)}") from None
    note = ""
    if result is None:
        note = (" (freeze_and_replace returned None; the model it changed in place was checked, but it should "
                "return the model)")
        result = model
    elif not isinstance(result, nn.Module):
        raise CheckFailed(f"freeze_and_replace(model) should return the model, returned a {type(result).__name__}")
    return result, note


def _module(model, dotted):
    return dict(model.named_modules()).get(dotted)


def _names(names, limit=5):
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class _Failure:
    """A CheckFailed message remembered by the cache (raised afresh for every check that reads it)."""

    def __init__(self, message):
        self.message = message


_CACHE = {}  # slot -> (ns, student function, value): one entry per slot, so at most one namespace is kept


def _cached(slot, ns, function_name, compute):
    """``compute(ns)`` once per namespace and student function; CheckFailed is remembered and re-raised.

    Two checks read each result (head + frozen read the prepared model; optimizer + one step read one training
    run), so one part costs one ``freeze_and_replace`` and one training step. Neither reader mutates it.
    """
    function = ns.get(function_name)
    entry = _CACHE.get(slot)
    if entry is not None and entry[0] is ns and entry[1] is function:
        value = entry[2]
    else:
        _CACHE.pop(slot, None)
        try:
            value = compute(ns)
        except CheckFailed as error:
            value = _Failure(str(error))
        _CACHE[slot] = (ns, function, value)
    if isinstance(value, _Failure):
        raise CheckFailed(value.message)
    return value


def clear_cache():
    _CACHE.clear()


# ---------------------------------------------------------------------------- running the student's train
def _pristine_loop():
    return importlib.import_module("a2cnn.finetune").run_finetune_epochs


def run_student_train(ns, model, loader):
    """Call the student's ``train`` on ``model``; return the optimizers it used.

    The optimizer is intercepted twice: ``run_finetune_epochs`` in train's globals (normally ``ns``) is replaced
    by a spy that records the optimizer and calls the pristine loop (quietly); and ``torch.optim.Optimizer``'s
    ``__init__`` is wrapped to record every optimizer created, for a ``train`` that runs its own loop. The spied
    optimizers are preferred. Both are restored before returning.
    """
    train = _student_function(ns, "train", "finetune_train")
    pristine = _pristine_loop()
    spied, created = [], []

    def spy(model, train_loader, optimizer, epochs, device, progress=False):
        spied.append(optimizer)
        return pristine(model, train_loader, optimizer, epochs, device, progress=progress)

    spaces = {id(ns): ns}
    student_globals = getattr(train, "__globals__", None)
    if isinstance(student_globals, dict):
        spaces[id(student_globals)] = student_globals
    missing = object()
    saved = {key: space.get(LOOP_NAME, missing) for key, space in spaces.items()}
    optimizer_class = torch.optim.Optimizer
    original_init = optimizer_class.__dict__["__init__"]

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        created.append(self)

    for space in spaces.values():
        space[LOOP_NAME] = spy
    optimizer_class.__init__ = recording_init
    try:
        torch.manual_seed(SEED)
        train(model, loader, **TRAIN_KWARGS)
    except (Exception, SystemExit) as error:
        call = "train(model, [one batch], epochs=1, learn_rate=1e-2, device='cpu')"
        raise CheckFailed(f"{call} raised {describe_exception(error)}") from None
    finally:
        optimizer_class.__init__ = original_init
        for key, space in spaces.items():
            if saved[key] is missing:
                space.pop(LOOP_NAME, None)
            else:
                space[LOOP_NAME] = saved[key]
    chosen = spied or created
    unique = []
    for optimizer in chosen:
        if not any(optimizer is seen for seen in unique):
            unique.append(optimizer)
    return unique


# ------------------------------------------------------------------------------------------------ checks
@guarded
@one_thread
def finetune_head_replaced(ns):
    """classifier.4 is a fresh nn.Conv2d(256, 2, kernel_size=1) with a bias."""
    model, note = student_prepared_model(ns)
    head = _module(model, HEAD)
    if head is None:
        raise CheckFailed(f"the model returned by freeze_and_replace has no layer classifier.4 (replace it: "
                          f"model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)){note}")
    if not isinstance(head, nn.Conv2d):
        raise CheckFailed(f"classifier.4 should be nn.Conv2d(256, 2, kernel_size=1), found {head}{note}")
    got = (head.in_channels, head.out_channels, tuple(head.kernel_size), tuple(head.stride), head.groups,
           tuple(head.dilation), head.padding if isinstance(head.padding, str) else tuple(head.padding))
    if got != (256, 2, (1, 1), (1, 1), 1, (1, 1), (0, 0)):
        detail = ""
        if head.out_channels != 2:
            detail = (f": it has {head.out_channels} output channels, but the flower masks have 2 classes "
                      f"(background 0, flower 1), so it needs 2")
        raise CheckFailed(f"classifier.4 should be nn.Conv2d(256, 2, kernel_size=1), found {head}{detail}{note}")
    if head.bias is None:
        raise CheckFailed(f"classifier.4 should have a bias (nn.Conv2d's default bias=True), found {head}{note}")
    old = pristine_deeplab().classifier[4]
    new_rows, old_rows = head.weight.detach().flatten(1), old.weight.detach().flatten(1)
    copied = [i for i, row in enumerate(new_rows) if any(torch.equal(row, other) for other in old_rows)]
    if copied:
        raise CheckFailed(f"classifier.4's weights are copied from the old {PRETRAINED_CLASSES}-class layer (rows "
                          f"{copied}): create a new, freshly initialised nn.Conv2d(256, 2, kernel_size=1){note}")
    return passed(f"classifier.4 is a new nn.Conv2d(256, 2, kernel_size=1) with a bias{note}")


@guarded
@one_thread
def finetune_frozen(ns):
    """Only classifier.4's parameters require gradients."""
    model, note = student_prepared_model(ns)
    params = list(model.named_parameters())
    head = [(n, p) for n, p in params if n.startswith(HEAD + ".")]
    unfrozen = [n for n, p in params if not n.startswith(HEAD + ".") and p.requires_grad]
    frozen_head = [n for n, p in head if not p.requires_grad]
    problems = []
    if unfrozen:
        problems.append(f"{len(unfrozen)} of the {len(params) - len(head)} parameters outside classifier.4 still "
                        f"require gradients ({_names(unfrozen)}): freeze the model first, e.g. "
                        f"model.requires_grad_(False)")
    if not head:
        problems.append("the model has no parameters under classifier.4 (the new last layer)")
    elif frozen_head:
        problems.append(f"{_names(frozen_head)} of the new last layer do(es) not require gradients: it must stay "
                        f"trainable (create it after freezing the model)")
    if problems:
        raise CheckFailed("; ".join(problems) + note)
    return passed(f"only classifier.4's {len(head)} parameter tensors require gradients; the other "
                  f"{len(params) - len(head)} are frozen{note}")


def _train_record(ns):
    """One real run of the student's ``train`` on a grader-prepared model: what its optimizer got, what changed."""
    model = grader_prepared_model()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizers = run_student_train(ns, model, tiny_loader())
    names = {id(p): n for n, p in model.named_parameters()}
    expected = {id(p) for n, p in model.named_parameters() if n.startswith(HEAD + ".")}
    given = set()
    for optimizer in optimizers:
        for group in getattr(optimizer, "param_groups", []):
            given.update(id(p) for p in group.get("params", []))
    after = model.state_dict()
    changed = []
    for key, old in before.items():
        if key.startswith(HEAD + "."):
            continue
        new = after.get(key)
        if new is None or new.dtype != old.dtype or new.shape != old.shape or not torch.equal(new, old):
            changed.append(key)
    weight = after.get(HEAD_PARAMS[0])
    return {
        "optimizers": len(optimizers),
        "extra": [names[i] for i in given if i in names and i not in expected],
        "foreign": sum(1 for i in given if i not in names),
        "missing": [names[i] for i in expected if i not in given],
        "changed": changed,
        "head_changed": weight is not None and not torch.equal(weight, before.get(HEAD_PARAMS[0], weight)),
    }


def train_record(ns):
    return _cached("train", ns, "train", _train_record)


@guarded
@one_thread
def finetune_optimizer_params(ns):
    """train hands exactly classifier.4.weight and classifier.4.bias to its optimizer."""
    record = train_record(ns)
    if not record["optimizers"]:
        raise CheckFailed("train did not create a torch.optim optimizer (build torch.optim.Adam(learned_parameters, "
                          "lr=learn_rate) and pass it to run_finetune_epochs)")
    problems = []
    if record["extra"]:
        problems.append(f"it also got {len(record['extra'])} frozen parameter(s) ({_names(record['extra'])})")
    if record["foreign"]:
        problems.append(f"it got {record['foreign']} tensor(s) that are not parameters of the model")
    if record["missing"]:
        problems.append(f"it did not get {_names(record['missing'])}")
    if problems:
        raise CheckFailed(f"the optimizer built by train should get exactly {' and '.join(HEAD_PARAMS)}, "
                          f"nothing else: " + "; ".join(problems))
    return passed(f"the optimizer gets exactly {' and '.join(HEAD_PARAMS)}")


@guarded
@one_thread
def finetune_one_step(ns):
    """After one real step only classifier.4 changed: parameters and buffers (BatchNorm statistics) alike."""
    record = train_record(ns)
    changed = record["changed"]
    if changed:
        buffers = [k for k in changed if "running_" in k or "num_batches_tracked" in k]
        why = ""
        if buffers:
            why = (" BatchNorm running statistics are updated in train() mode even when the parameters are "
                   "frozen: keep the model in eval() mode while fine-tuning (run_finetune_epochs does; do not call "
                   "model.train()).")
        raise CheckFailed(f"after one training step {len(changed)} tensor(s) of the state_dict outside classifier.4 "
                          f"changed ({_names(changed)}). Frozen means that only classifier.4 changes, parameters "
                          f"and buffers alike.{why}")
    if not record["head_changed"]:
        raise CheckFailed("classifier.4.weight did not change in one training step with learn_rate=1e-2: hand its "
                          "parameters to the optimizer and run the loop (run_finetune_epochs)")
    return passed("after one real optimisation step only classifier.4 changed; every other parameter and buffer "
                  "(BatchNorm statistics included) is bit-identical")
