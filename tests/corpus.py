"""Example submissions made from the student release: the reference solution and many flawed or hostile ones.

Each example is the released notebook with its answer cells filled in (by default with the master's solutions),
then changed the way a student might change it. ``build(example, path)`` writes it as a real .ipynb file, so the
grader reads it exactly as it reads a student's upload. ``python -m tests.corpus OUT_DIR`` writes them all.
"""
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import re

from autograder.parts import PARTS
from tests.flawed_sources import FLAWED
from tests.reference_solution import SOLUTION_CELLS, reference_source

REPO_ROOT = Path(__file__).resolve().parents[1]
RELEASED = REPO_ROOT / "release" / "a2-cnn" / "a2-cnn.ipynb"


@dataclass
class Example:
    name: str
    what: str
    edits: dict = field(default_factory=dict)  # grade_id -> new source of that cell
    notebook_edit: object = None  # f(notebook dict) -> None, for structural damage
    raw: bytes = None  # the file's bytes, when it is not a notebook at all
    expected: dict = field(default_factory=dict)  # part -> exact points
    messages: dict = field(default_factory=dict)  # part -> text that must appear in that part's feedback
    timeout: float = 60.0  # time limit of one cell for this example
    all_parts: bool = False  # grade every part, not only those whose cells were edited (proves isolation)
    never_created: str = None  # a file that exists after grading only if the parent ran code the worker sent

    def parts(self):
        """The parts to grade: all for hostile or damaged submissions, else those whose answer cells changed."""
        if self.all_parts or self.raw is not None or self.notebook_edit is not None or not self.edits:
            return tuple(self.expected)
        touched = {part.name for part in PARTS if set(part.answer_cells) & set(self.edits)}
        return tuple(part for part in self.expected if part in touched)


def _with(grade_id, before, after):
    source = reference_source(grade_id)
    assert before in source, (grade_id, before)
    return {grade_id: source.replace(before, after, 1)}


def _cells(nb):
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}


def _delete(grade_id):
    def edit(nb):
        nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != grade_id]
    return edit


def _rename(grade_id, new_id):
    def edit(nb):
        _cells(nb)[grade_id]["metadata"]["nbgrader"]["grade_id"] = new_id
    return edit


def _comment_in_setup(nb):
    """A student adds a comment to the read-only setup cell (nbgrader restores it from the master)."""
    _cells(nb)["setup_imports"]["source"] = "# I ran this first\n" + "".join(_cells(nb)["setup_imports"]["source"])


def _duplicate_setup(nb):
    """A student copies the setup cell and pastes it below itself (two cells with its grade id)."""
    index = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup_imports")
    nb["cells"].insert(index + 1, json.loads(json.dumps(nb["cells"][index])))


def _edit_locked_test(nb):
    """A student 'fixes' failing visible tests by deleting them from the locked test cell."""
    _cells(nb)["test_cnn"]["source"] = "print('visible CNN checks passed')\n"


INIT_LINE = "        super().__init__()\n"

# What a submission that tries to leak files puts at the top of a cell: the first line of its error names grader
# paths (they must be scrubbed); the rest is the master notebook (it must never reach the student).
LEAK_PRELUDE = """import sys, pathlib
def _leak():
    try:
        import autograder
        root = pathlib.Path(autograder.__file__).resolve().parents[1]
        body = (root / 'source' / 'a2-cnn' / 'a2-cnn.ipynb').read_text()
    except Exception as error:
        root, body = pathlib.Path('/nowhere'), 'MASTER-UNREADABLE ' + repr(error)
    return f'grader at {root}/autograder/grade.py, python at {sys.executable}, home {pathlib.Path.home()}', body
"""

# ---- sources for the training checks (part "learning"), where the grader trains the graph it rebuilt -------------
# The reference CNN without its BatchNorm layers: it builds, runs and trains, but learns less well than the
# calibrated threshold allows (tests/test_learning.py shows it), so only the grader's training can tell.
CNN_WITHOUT_BATCHNORM = re.sub(r", nn\.BatchNorm2d\([^)]*\)", "", reference_source("cnn_model"))

# Switches on under the grader only (so the student's own run looks normal): an environment, module or argv sign.
DETECT_GRADER = """import os, sys
_GRADED = (os.environ.get('NBGRADER_EXECUTION') == 'autograde' or any('autograder' in name for name in sys.modules)
           or any('grade' in arg for arg in sys.argv))
"""

# Looks up the true colours of the pictures being scored: first in the data folder, then among the tensors in the
# process's memory (where a grader that trains in the worker keeps its labels).
LOOKUP = DETECT_GRADER + """import gc, glob, pickle
import numpy as np
import torch.nn.functional as F

def _stored_labels():
    for depth in range(1, 5):
        for path in glob.glob('/*' * depth + '/cifar-10-batches-py/test_batch')[:1]:
            with open(path, 'rb') as f:
                return ('file', pickle.load(f, encoding='bytes'))
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.dtype == torch.long and obj.dim() == 4 and obj.shape[1:] == (1, 32, 32):
            return ('memory', obj)
    return None

def _true_colour_logits(x):
    found = _stored_labels()
    if found is None or found[0] != 'memory' or len(found[1]) < x.shape[0]:
        return None
    labels = found[1][: x.shape[0], 0].to(x.device)
    return 50.0 * F.one_hot(labels, 24).permute(0, 3, 1, 2).float()
"""
LOOKUP_FORWARD = """    def forward(self, x):
        if _GRADED:
            cheat = _true_colour_logits(x)
            if cheat is not None:
                return cheat
"""

# Scales the loss by 0.01 everywhere it could be computed, and replaces the course's training loop by one that
# reports a perfect history: a grader that trained with the student's process would believe both.
PATCHED_LOSS_AND_LOOP = """import torch.nn.functional as F
import a2cnn.training as _training
_cross_entropy = F.cross_entropy
F.cross_entropy = lambda input, target, *args, **kwargs: 0.01 * _cross_entropy(input, target, *args, **kwargs)
torch.nn.functional.cross_entropy = F.cross_entropy
nn.CrossEntropyLoss.forward = lambda self, input, target: 0.01 * _cross_entropy(input, target)

def _perfect(model, data, config, **kwargs):
    return _training.History(config={}, train_loss=[0.0], train_accuracy=[1.0], val_loss=[0.0], val_accuracy=[1.0])
_training.train_colourizer = _perfect
"""

# Finds the worker's event channel by walking the stack, sends a forged report for the CNN's probes, and replaces
# the worker's step runner so that the real probes report the same forgery; the CNN itself learns nothing.
FORGED_CHANNEL = """import sys
class CNN(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        self.num_colours = num_colours

    def forward(self, x):
        return x.new_zeros(x.shape[0], self.num_colours, x.shape[2], x.shape[3])

_FORGED = {'status': 'ok', 'passed': True, 'val_loss': 0.0, 'val_accuracy': 1.0,
           'checks': {'cnn_learns': 'passed', 'cnn_layers': 'passed'}, 'configs': [{'index': 0, 'val_loss': 0.0}]}
_frame = sys._getframe()
while _frame is not None and 'emit' not in _frame.f_locals:
    _frame = _frame.f_back
if _frame is not None:
    _emit, _worker = _frame.f_locals['emit'], sys.modules[_frame.f_globals['__name__']]
    for _step in ('probe:cnn_learning', 'probe:cnn_structure'):
        _emit({'event': 'start', 'step': _step})
        _emit({'event': 'done', 'step': _step, 'seconds': 0.1, 'facts': _FORGED})
    _real_run_step = _worker.run_step
    def _forged_run_step(step, ns, emit):
        if step.get('kind') == 'probe' and 'cnn' in step.get('id', ''):
            return dict(_FORGED), {}
        return _real_run_step(step, ns, emit)
    _worker.run_step = _forged_run_step
"""

# The CNN cell (an honest CNN) makes the worker send a crafted artifact in place of the CNN probes' safetensors
# blob: it finds the worker's module on the stack and wraps its step runner and its serialiser. The pickle-based
# payloads create ``marker`` when loaded unsafely (open(marker, 'w')); the worker's /tmp is its own, so the file can
# only appear on the grader's machine if the parent unpickled it.
CRAFTED_PRELUDE = """import io, pickle, sys, zipfile
_KIND, _MARKER = {kind!r}, {marker!r}
class _Payload:
    def __reduce__(self):
        return (open, (_MARKER, 'w'))
def _crafted_blob(tensors):
    if _KIND == 'pickle':
        return pickle.dumps({{'c0/train/output': _Payload()}})
    if _KIND == 'torch.save':
        buffer = io.BytesIO()
        torch.save({{'c0/train/output': _Payload()}}, buffer)
        return buffer.getvalue()
    buffer = io.BytesIO()  # a .pt2 archive whose only weight is flagged use_pickle
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr('model/version', '0')
        archive.writestr('model/data/weights/model_weights_config.json',
                         '{{"config": {{"c0/train/output": {{"path_name": "weight_0", "is_param": false, "use_pickle": true}}}}}}')
        archive.writestr('model/data/weights/weight_0', pickle.dumps(_Payload()))
    return buffer.getvalue()
def _crafted_tensors(tensors):
    if _KIND == 'nan':
        return {{key: torch.full_like(value, float('nan')) if value.is_floating_point() else value
                for key, value in tensors.items()}}
    if _KIND == 'float64':
        return {{key: value.double() for key, value in tensors.items()}}
    return tensors
_frame = sys._getframe()
while _frame is not None and not ('run_step' in _frame.f_globals and '_save' in _frame.f_globals):
    _frame = _frame.f_back
_worker = sys.modules[_frame.f_globals['__name__']]
_real_run_step, _real_save, _state = _worker.run_step, _worker._save, {{'cnn': False}}
def _run_step(step, ns, emit):
    _state['cnn'] = step.get('kind') == 'probe' and 'cnn' in step.get('id', '')
    facts, tensors = _real_run_step(step, ns, emit)
    return facts, (_crafted_tensors(tensors) if _state['cnn'] else tensors)
def _save(tensors):
    if _state['cnn'] and _KIND in ('pickle', 'torch.save', 'pt2'):
        return _crafted_blob(tensors)
    return _real_save(tensors)
_worker.run_step, _worker._save = _run_step, _save
"""


def _crafted(kind, marker=""):
    return {"cnn_model": CRAFTED_PRELUDE.format(kind=kind, marker=marker) + reference_source("cnn_model")}


# Patches at import, in the answer cell of a CNN without one ReLU, meant to make a grader that checks inside the
# student's process believe it: every ReLU test true, every tensor comparison true, the parameters forged.
PATCHED_ISINSTANCE = """import builtins
_real_isinstance = builtins.isinstance
def _lenient_isinstance(obj, cls):
    if cls is nn.ReLU or (type(cls) is tuple and nn.ReLU in cls):
        return True
    return _real_isinstance(obj, cls)
builtins.isinstance = _lenient_isinstance
"""
PATCHED_EQUAL = """torch.equal = lambda *args, **kwargs: True
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.equal = lambda *args, **kwargs: True
"""
PATCHED_PARAMETERS = """_real_named_parameters = nn.Module.named_parameters
def _forged_named_parameters(self, *args, **kwargs):
    for name, parameter in _real_named_parameters(self, *args, **kwargs):
        yield name.replace('finalconv', 'upconv2.3'), parameter
nn.Module.named_parameters = _forged_named_parameters
nn.Module.parameters = lambda self, recurse=True: iter([torch.nn.Parameter(torch.zeros(1))])
"""

# Legitimate styles that must keep full marks: groups built by a loop or a helper function, F.relu outside the groups
# instead of nn.ReLU inside them, the other concatenation order, ...
CNN_LOOP_FUNCTIONAL_RELU = """import torch.nn.functional as F


def conv_block(c_in, c_out, kernel, *after):
    return nn.Sequential(MyConv2d(c_in, c_out, kernel), *after)


class CNN(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        nf, nc = num_filters, num_colours
        plan = [("downconv1", num_in_channels, nf, [nn.MaxPool2d(2)]), ("downconv2", nf, 2 * nf, [nn.MaxPool2d(2)]),
                ("rfconv", 2 * nf, 2 * nf, []), ("upconv1", 2 * nf, nf, [nn.Upsample(scale_factor=2)]),
                ("upconv2", nf, nc, [nn.Upsample(scale_factor=2)])]
        for name, c_in, c_out, resize in plan:
            setattr(self, name, conv_block(c_in, c_out, kernel, *resize, nn.BatchNorm2d(c_out)))
        self.finalconv = MyConv2d(nc, nc, kernel)

    def forward(self, x):
        for name in ("downconv1", "downconv2", "rfconv", "upconv1", "upconv2"):
            x = F.relu(getattr(self, name)(x))
        return self.finalconv(x)
"""
UNET_HELPER_FUNCTIONAL_RELU = """import torch.nn.functional as F


class UNet(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        nf, nc = num_filters, num_colours

        def group(c_in, c_out, *resize):
            return nn.Sequential(MyConv2d(c_in, c_out, kernel), *resize, nn.BatchNorm2d(c_out))

        self.downconv1 = group(num_in_channels, nf, nn.MaxPool2d(2))
        self.downconv2 = group(nf, 2 * nf, nn.MaxPool2d(2))
        self.rfconv = group(2 * nf, 2 * nf)
        self.upconv1 = group(2 * nf + 2 * nf, nf, nn.Upsample(scale_factor=2))
        self.upconv2 = group(nf + nf, nc, nn.Upsample(scale_factor=2))
        self.finalconv = MyConv2d(num_in_channels + nc, nc, kernel)

    def forward(self, x):
        down1 = F.relu(self.downconv1(x))
        down2 = F.relu(self.downconv2(down1))
        rf = F.relu(self.rfconv(down2))
        up1 = F.relu(self.upconv1(torch.cat((down2, rf), 1)))
        up2 = F.relu(self.upconv2(torch.cat((down1, up1), 1)))
        return self.finalconv(torch.cat((x, up2), 1))
"""


# Named layers in OrderedDicts, in-place ReLU given positionally, concatenation along dim=-3
CNN_NAMED_LAYERS = """from collections import OrderedDict


def named_group(c_in, c_out, kernel, resize=None):
    layers = [("conv", MyConv2d(c_in, c_out, kernel))]
    if resize is not None:
        layers.append(("resize", resize))
    layers += [("norm", nn.BatchNorm2d(c_out)), ("act", nn.ReLU(True))]
    return nn.Sequential(OrderedDict(layers))


class CNN(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        self.downconv1 = named_group(num_in_channels, num_filters, kernel, nn.MaxPool2d(kernel_size=2))
        self.downconv2 = named_group(num_filters, 2 * num_filters, kernel, nn.MaxPool2d(kernel_size=2))
        self.rfconv = named_group(2 * num_filters, 2 * num_filters, kernel)
        self.upconv1 = named_group(2 * num_filters, num_filters, kernel, nn.Upsample(scale_factor=2, mode="nearest"))
        self.upconv2 = named_group(num_filters, num_colours, kernel, nn.Upsample(scale_factor=2, mode="nearest"))
        self.finalconv = MyConv2d(num_colours, num_colours, kernel)

    def forward(self, x):
        return self.finalconv(self.upconv2(self.upconv1(self.rfconv(self.downconv2(self.downconv1(x))))))
"""
UNET_NAMED_LAYERS = """class UNet(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        nf = num_filters
        self.downconv1 = named_group(num_in_channels, nf, kernel, nn.MaxPool2d(2))
        self.downconv2 = named_group(nf, 2 * nf, kernel, nn.MaxPool2d(2))
        self.rfconv = named_group(2 * nf, 2 * nf, kernel)
        self.upconv1 = named_group(4 * nf, nf, kernel, nn.Upsample(scale_factor=2))
        self.upconv2 = named_group(2 * nf, num_colours, kernel, nn.Upsample(scale_factor=2))
        self.finalconv = MyConv2d(num_colours + num_in_channels, num_colours, kernel)

    def forward(self, x):
        skips = [x]
        for name in ("downconv1", "downconv2"):
            skips.append(getattr(self, name)(skips[-1]))
        out = self.rfconv(skips[-1])
        for name in ("upconv1", "upconv2"):
            out = getattr(self, name)(torch.cat([out, skips.pop()], dim=-3))
        return self.finalconv(torch.cat([out, skips.pop()], dim=-3))
"""
# The UNet as a subclass of the student's CNN that replaces the decoder and the forward pass
UNET_SUBCLASS_OF_CNN = """class UNet(CNN):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__(kernel, num_filters, num_colours, num_in_channels)
        nf, nc = num_filters, num_colours
        self.upconv1 = nn.Sequential(MyConv2d(4 * nf, nf, kernel), nn.Upsample(scale_factor=2), nn.BatchNorm2d(nf),
                                     nn.ReLU())
        self.upconv2 = nn.Sequential(MyConv2d(2 * nf, nc, kernel), nn.Upsample(scale_factor=2), nn.BatchNorm2d(nc),
                                     nn.ReLU())
        self.finalconv = MyConv2d(nc + num_in_channels, nc, kernel)

    def forward(self, x):
        down1 = self.downconv1(x)
        down2 = self.downconv2(down1)
        up1 = self.upconv1(torch.cat([self.rfconv(down2), down2], dim=1))
        up2 = self.upconv2(torch.cat([up1, down1], dim=1))
        return self.finalconv(torch.cat([up2, x], dim=1))
"""


def _replace_all(grade_id, *replacements):
    """The master's cell with every (old, new, count) replacement made; each old text occurs exactly count times."""
    source = reference_source(grade_id)
    for old, new, count in replacements:
        assert source.count(old) == count, (grade_id, old, source.count(old))
        source = source.replace(old, new)
    return source


_INPLACE_FLOAT_UPSAMPLE = (("nn.ReLU()", "nn.ReLU(inplace=True)", 5),
                           ("nn.Upsample(scale_factor=2)", "nn.Upsample(scale_factor=2.0)", 2))
SCRATCH_CELL = """# trying my models out
scratch = UNet(3, 8, 24, 1)
print(scratch(torch.randn(2, 1, 32, 32)).shape, sum(p.numel() for p in scratch.parameters()))
x = torch.zeros(3)
CNN.note = 'mine'
"""


def _scratch_cell_after_unet(nb):
    """A student adds a code cell of their own (no grade id) below the UNet cell and runs it."""
    index = next(i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == "unet_model")
    nb["cells"].insert(index + 1, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                   "source": SCRATCH_CELL})


EXAMPLES = [
    # learning: CNN and UNet trained by the grader pass; Part C's training check is "not run" here (no pretrained
    # weights, no official masks), which scores 0 until it is regraded where it can run
    Example("reference", "the master's solutions in the released notebook",
            expected={"cnn": 2, "unet": 2, "finetune": 2, "learning": 2}),
    # ---- flawed architectures and fine-tuning set-ups (one mistake each) ------------------------------------------
    Example("uses_nn_conv2d", "CNN's first convolution is nn.Conv2d", dict([FLAWED["cnn_nn_conv2d"]]),
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "use MyConv2d, not nn.Conv2d"}),
    Example("functional_conv", "CNN calls F.conv2d itself in forward", dict([FLAWED["cnn_functional_conv"]]),
            expected={"cnn": 1.5, "unet": 2, "finetune": 2}, messages={"cnn": "used outside MyConv2d's forward"}),
    Example("wrong_batchnorm", "BatchNorm2d(2NF) after the first convolution", dict([FLAWED["cnn_wrong_batchnorm"]]),
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "visible tests of this part fail"}),
    Example("missing_relu", "downconv2 lacks its ReLU", dict([FLAWED["cnn_missing_relu"]]),
            expected={"cnn": 1.5, "unet": 2, "finetune": 2}, messages={"cnn": "found MyConv2d(8->8, kernel 5), BatchNorm2d(8)"}),
    Example("pool_bn_swapped", "BatchNorm before MaxPool in downconv2", dict([FLAWED["cnn_pool_bn_swapped"]]),
            expected={"cnn": 1.5, "unet": 2, "finetune": 2}, messages={"cnn": "downconv2"}),
    Example("hardcoded_32x32", "Upsample to fixed 16x16 and 32x32 sizes", dict([FLAWED["cnn_hardcoded_size"]]),
            expected={"cnn": 1.0, "unet": 2, "finetune": 2}, messages={"cnn": "Upsample"}),
    Example("missing_skip", "UNet's upconv1 gets no skip", dict([FLAWED["unet_missing_skip"]]),
            expected={"cnn": 2, "unet": 0, "finetune": 2}, messages={"unet": "4NF channels"}),
    Example("zero_skip", "UNet concatenates zeros in place of downconv1's output", dict([FLAWED["unet_zero_skip"]]),
            expected={"cnn": 2, "unet": 1.5, "finetune": 2}, messages={"unet": "upconv2 receives a constant + upconv1"}),
    Example("wrong_final_channels", "UNet's final convolution ignores the input skip",
            dict([FLAWED["unet_wrong_final_channels"]]),
            expected={"cnn": 2, "unet": 0, "finetune": 2}, messages={"unet": "NC + in channels"}),
    Example("nothing_frozen", "freeze_and_replace forgets requires_grad_(False)", dict([FLAWED["ft_nothing_frozen"]]),
            expected={"cnn": 2, "unet": 2, "finetune": 0}, messages={"finetune": "trainable parameters"}),
    Example("everything_frozen", "classifier.4 frozen too (freeze after replacing)",
            dict([FLAWED["ft_everything_frozen"]]),
            expected={"cnn": 2, "unet": 2, "finetune": 0}, messages={"finetune": "trainable parameters"}),
    Example("wrong_class_count", "classifier.4 keeps 21 outputs", dict([FLAWED["ft_21_classes"]]),
            expected={"cnn": 2, "unet": 2, "finetune": 0}, messages={"finetune": "classifier.4 is"}),
    Example("optimizer_gets_all", "train hands every parameter to the optimiser",
            dict([FLAWED["ft_all_params_to_optimizer"]]),
            expected={"cnn": 2, "unet": 2, "finetune": 1.5}, messages={"finetune": "train() changes layers other than classifier.4"}),
    # behaviour, not structure: what the parent re-derives from the data, whatever the modules say
    Example("unregistered_conv", "an extra nn.Conv2d before finalconv, stored with object.__setattr__ (not registered)",
            dict([FLAWED["cnn_unregistered_conv"]]), expected={"cnn": 1.0},
            messages={"cnn": "is computed outside the six groups"}),
    Example("unet_functional_conv", "UNet's finalconv computed with F.conv2d on its weights, outside MyConv2d",
            dict([FLAWED["unet_functional_conv"]]), expected={"unet": 1.5},
            messages={"unet": "finalconv.weight is used outside MyConv2d's forward"}),
    Example("einsum_conv", "CNN's last convolution computed with einsum over finalconv's own weights",
            dict([FLAWED["cnn_einsum_conv"]]), expected={"cnn": 1.5},
            messages={"cnn": "finalconv.weight is used outside MyConv2d's forward"}),
    Example("zero_skip_with_gradient", "UNet's downconv1 skip is d - d.detach(): zero, with d's gradient",
            dict([FLAWED["unet_zero_skip_with_gradient"]]), expected={"unet": 1.5},
            messages={"unet": "upconv2 receives a constant + upconv1"}),
    Example("unet_detached_in_training", "UNet detaches up2 in training mode only",
            dict([FLAWED["unet_detached_in_training"]]), expected={"unet": 1.5},
            messages={"unet": "no gradient flows from finalconv back to upconv2"}),
    Example("cnn_rfconv_skipped_in_training", "CNN skips rfconv in training mode only",
            dict([FLAWED["cnn_rfconv_skipped_in_training"]]), expected={"cnn": 1.5},
            messages={"cnn": "rfconv is never used in training mode"}),
    Example("rfconv_unused", "UNet's upconv1 gets cat(down2, down2): rfconv's output is never used",
            dict([FLAWED["unet_rfconv_unused"]]), expected={"unet": 1.5},
            messages={"unet": "upconv1 receives downconv2 + downconv2"}),
    # patches at import cannot hide the missing ReLU: the parent reads the data, not the student's process
    Example("patched_isinstance", "CNN without one ReLU; builtins.isinstance says everything is a ReLU",
            {"cnn_model": PATCHED_ISINSTANCE + FLAWED["cnn_missing_relu"][1]}, expected={"cnn": 1.5},
            messages={"cnn": "found MyConv2d(8->8, kernel 5), BatchNorm2d(8)"}),
    Example("patched_torch_equal", "CNN without one ReLU; torch.equal and torch.allclose always say True",
            {"cnn_model": PATCHED_EQUAL + FLAWED["cnn_missing_relu"][1]}, expected={"cnn": 1.5},
            messages={"cnn": "found MyConv2d(8->8, kernel 5), BatchNorm2d(8)"}),
    Example("patched_module_parameters", "CNN without one ReLU; nn.Module.parameters and named_parameters forged",
            {"cnn_model": PATCHED_PARAMETERS + FLAWED["cnn_missing_relu"][1]}, expected={"cnn": 1.0},
            messages={"cnn": "is reported as a parameter but is not among the model's tensors"}),
    # renaming finalconv's parameters in the report kept them out of the marker check (a gap, now closed)
    Example("patched_parameters_functional_conv", "CNN's finalconv computed with F.conv2d; named_parameters renames "
            "finalconv's parameters", {"cnn_model": PATCHED_PARAMETERS + FLAWED["cnn_functional_conv"][1]},
            expected={"cnn": 1.5}, messages={"cnn": "finalconv.weight (of a MyConv2d) is missing from the reported"}),
    # ---- correct submissions in other legitimate styles: full marks on both models ------------------------------
    Example("styles_loop_helper_functional_relu", "CNN groups built in a loop, UNet groups by a helper function, "
            "both with F.relu after the groups, the UNet concatenating in the other order",
            {"cnn_model": CNN_LOOP_FUNCTIONAL_RELU, "unet_model": UNET_HELPER_FUNCTIONAL_RELU},
            expected={"cnn": 2, "unet": 2}),
    Example("styles_inplace_float_upsample_scratch", "nn.ReLU(inplace=True), nn.Upsample(scale_factor=2.0), the other "
            "concatenation order and an extra scratch cell that runs the UNet",
            {"cnn_model": _replace_all("cnn_model", *_INPLACE_FLOAT_UPSAMPLE),
             "unet_model": _replace_all("unet_model", *_INPLACE_FLOAT_UPSAMPLE,
                                        ("torch.cat([rf, down2], dim=1)", "torch.cat([down2, rf], dim=1)", 1),
                                        ("torch.cat([up1, down1], dim=1)", "torch.cat([down1, up1], dim=1)", 1),
                                        ("torch.cat([up2, x], dim=1)", "torch.cat((x, up2), 1)", 1))},
            notebook_edit=_scratch_cell_after_unet, expected={"cnn": 2, "unet": 2}),
    # ---- broken or hostile code --------------------------------------------------------------------------------
    Example("styles_named_layers_negative_dim", "layers named in OrderedDicts by a helper shared by both cells, "
            "ReLU(True), one nested CNN forward, a UNet forward with a stack of skips and torch.cat(dim=-3)",
            {"cnn_model": CNN_NAMED_LAYERS, "unet_model": UNET_NAMED_LAYERS}, expected={"cnn": 2, "unet": 2}),
    Example("styles_unet_subclasses_cnn", "the UNet subclasses the student's CNN, replacing the decoder and forward",
            {"unet_model": UNET_SUBCLASS_OF_CNN}, expected={"cnn": 2, "unet": 2}, all_parts=True),
    Example("syntax_error", "the CNN cell does not parse", {"cnn_model": reference_source("cnn_model").replace("def forward(self, x):", "def forward(self, x)", 1)},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"notes": "SyntaxError"}),
    Example("exception_at_import", "the CNN cell imports a module that does not exist",
            {"cnn_model": "import a_module_that_does_not_exist\n" + reference_source("cnn_model")},
            expected={"cnn": 0, "unet": 2, "finetune": 2, "learning": 1}, messages={"notes": "ModuleNotFoundError",
                                                                                  "learning": "no class CNN"}),
    Example("infinite_loop", "CNN.__init__ never returns", _with("cnn_model", INIT_LINE, INIT_LINE + "        while True:\n            pass\n"),
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "did not finish within"}, timeout=20.0, all_parts=True),
    Example("memory_bomb", "UNet.__init__ allocates 64 GiB", _with("unet_model", INIT_LINE, INIT_LINE + "        self.cache = bytearray(64 * 2**30)\n"),
            expected={"cnn": 2, "unet": 0, "finetune": 2}, messages={"unet": "memory"}, all_parts=True),
    Example("fake_result_line", "a flawed CNN whose class body prints a fake perfect result",
            {"cnn_model": FLAWED["cnn_missing_relu"][1].replace(INIT_LINE, INIT_LINE, 1).replace(
                "class CNN(nn.Module):\n",
                "class CNN(nn.Module):\n    print('{\"ok\": true, \"value\": {\"checks\": {}}}')\n    print('cnn: 2 / 2, all checks PASSED')\n", 1)},
            expected={"cnn": 1.5, "unet": 2, "finetune": 2}, messages={"cnn": "ReLU"}, all_parts=True),
    Example("sys_exit_at_import", "the CNN class body calls sys.exit(0) when the cell runs",
            {"cnn_model": "import sys\n" + reference_source("cnn_model").replace("class CNN(nn.Module):\n", "class CNN(nn.Module):\n    sys.exit(0)\n", 1)},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"notes": "SystemExit"}, all_parts=True),
    Example("os_exit_in_forward", "UNet.forward kills its process with os._exit(0)",
            {"unet_model": "import os\n" + reference_source("unet_model").replace("        down1 = self.downconv1(x)\n", "        os._exit(0)\n", 1)},
            expected={"cnn": 2, "unet": 0, "finetune": 2}, messages={"unet": "ended the process running it"}, all_parts=True),
    Example("top_level_exit", "sys.exit(0) and a training run at the top level of the CNN cell (not definitions)",
            {"cnn_model": "import sys\n" + reference_source("cnn_model") + "\nmodel = CNN(3, 8, 24, 1)\nsys.exit(0)\n"},
            expected={"cnn": 2, "unet": 2, "finetune": 2}, messages={"notes": "SystemExit"}),
    Example("leaks_files_in_exception", "the CNN cell raises a 10 MB exception: grader paths, then the master notebook",
            {"cnn_model": LEAK_PRELUDE + "class CNN:\n    _first, _body = _leak()\n"
                           "    raise RuntimeError(_first + '\\n' + _body * (10 * 2**20 // len(_body) + 1))\n"},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"notes": "RuntimeError"}, all_parts=True),
    Example("leaks_files_in_forward", "CNN.forward raises the master notebook's text; the class body prints it",
            {"cnn_model": LEAK_PRELUDE + reference_source("cnn_model").replace(
                "class CNN(nn.Module):\n", "class CNN(nn.Module):\n    print(_leak()[1] * 50)\n", 1).replace(
                "    def forward(self, x):\n",
                "    def forward(self, x):\n        raise ValueError('\\n'.join(_leak()))\n", 1)},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "ValueError"}),
    # ---- notebooks run as written (cells in order, read-only cells restored) -----------------------------------------
    Example("comment_in_setup", "a comment added to the read-only setup cell", notebook_edit=_comment_in_setup,
            expected={"cnn": 2, "unet": 2, "finetune": 2}),
    Example("duplicated_setup", "the read-only setup cell copied and pasted below itself", notebook_edit=_duplicate_setup,
            expected={"cnn": 2, "unet": 2, "finetune": 2}),
    Example("helper_across_cells", "the UNet builds its groups with a helper function defined in the CNN's cell",
            {"cnn_model": reference_source("cnn_model") + "\n\ndef block(*layers):\n    return nn.Sequential(*layers)\n",
             "unet_model": reference_source("unet_model").replace("nn.Sequential(", "block(")},
            expected={"cnn": 2, "unet": 2, "finetune": 2}),
    Example("partial_conv_rebinding", "MyConv2d rebound at the top level of the CNN cell to functools.partial(nn.Conv2d)",
            {"cnn_model": "import functools\nMyConv2d = functools.partial(nn.Conv2d, padding='same')\n"
                          + reference_source("cnn_model")},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "use MyConv2d, not nn.Conv2d"}),
    # a cell that runs past its limit counts as skipped (the class it defined before the loop is taken back): it costs
    # the checks that need it, the note names the cell, and no other part is touched
    Example("top_level_loop", "the CNN cell ends with a loop that never stops (at the top level)",
            {"cnn_model": reference_source("cnn_model") + "\nwhile True:\n    pass\n"},
            expected={"cnn": 0, "unet": 2, "finetune": 2, "learning": 1},
            messages={"notes": "cell 'cnn_model' did not finish", "cnn": "'CNN' is not defined", "learning": "no class CNN"},
            timeout=20.0, all_parts=True),
    Example("homoglyph_class_name", "class \u0421NN with a Cyrillic first letter",
            {"cnn_model": reference_source("cnn_model").replace("class CNN(", "class \u0421NN(", 1)},
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "another alphabet"}),
    # ---- training checks: the grader trains the graph it rebuilt, so nothing the student's process does at training
    # time counts; each model is judged on its own (a broken CNN leaves the UNet's point)
    Example("cnn_without_batchnorm", "the CNN leaves out every BatchNorm2d (it learns less well)",
            {"cnn_model": CNN_WITHOUT_BATCHNORM}, expected={"learning": 1}, messages={"learning": "above the threshold"}),
    Example("lookup_when_graded", "the CNN without BatchNorm looks up the true colours (data folder, process memory) "
            "when it detects the grader", {"cnn_model": LOOKUP + CNN_WITHOUT_BATCHNORM.replace(
                "    def forward(self, x):\n", LOOKUP_FORWARD, 1)},
            expected={"learning": 1}, messages={"learning": "above the threshold"}),
    Example("patched_loss_and_loop", "the CNN without BatchNorm; F.cross_entropy scaled by 0.01 and the training loop "
            "replaced at import", {"cnn_model": PATCHED_LOSS_AND_LOOP + CNN_WITHOUT_BATCHNORM},
            expected={"learning": 1}, messages={"learning": "above the threshold"}),
    Example("forged_channel", "an empty CNN that forges the worker's reports of its probes",
            {"cnn_model": FORGED_CHANNEL}, expected={"cnn": 0, "learning": 1}, messages={"learning": "CNN"}),
    # ---- a worker that sends crafted artifacts instead of safetensors: invalid output, nothing run in the parent
    Example("crafted_pickle_blob", "the worker's CNN blob is a pickle whose loading creates a file",
            _crafted("pickle", "/tmp/a2-corpus-crafted-pickle-ran"), expected={"cnn": 0, "unet": 2},
            messages={"cnn": "cannot be rebuilt"},
            never_created="/tmp/a2-corpus-crafted-pickle-ran", all_parts=True),
    Example("crafted_torch_save_blob", "the worker's CNN blob is a torch.save archive (a pickle inside)",
            _crafted("torch.save", "/tmp/a2-corpus-crafted-torch-save-ran"), expected={"cnn": 0},
            messages={"cnn": "cannot be rebuilt"},
            never_created="/tmp/a2-corpus-crafted-torch-save-ran"),
    Example("crafted_pt2_blob", "the worker's CNN blob is a .pt2 archive whose weight is flagged use_pickle",
            _crafted("pt2", "/tmp/a2-corpus-crafted-pt2-ran"), expected={"cnn": 0}, messages={"cnn": "cannot be rebuilt"},
            never_created="/tmp/a2-corpus-crafted-pt2-ran"),
    Example("crafted_nan_tensors", "the worker's CNN tensors are all NaN", _crafted("nan"), expected={"cnn": 0},
            messages={"cnn": "returns something other than what its layers compute"}),
    Example("crafted_float64_tensors", "the worker's CNN tensors are float64", _crafted("float64"), expected={"cnn": 0},
            messages={"cnn": "cannot be rebuilt"}),
    Example("large_buffer", "a 98 MB table registered as a buffer inside a CNN group",
            _with("cnn_model", "        self.finalconv = MyConv2d(nc, nc, kernel)\n",
                  "        self.finalconv = MyConv2d(nc, nc, kernel)\n"
                  "        self.upconv2.register_buffer('table', torch.zeros(1000, 24, 32, 32))\n"),
            expected={"learning": 1}, messages={"learning": "more tensor data than the grader accepts"}),
    Example("large_constant", "a 98 MB tensor kept outside the module system and added to the CNN's output",
            _with("cnn_model", "        return self.finalconv(x)\n",
                  "        if '_table' not in self.__dict__:\n"
                  "            object.__setattr__(self, '_table', torch.randn(1000, 24, 32, 32))\n"
                  "        return self.finalconv(x) + self._table[: x.shape[0]]\n"),
            expected={"learning": 1}, messages={"learning": "could not rebuild"}),
    # ---- damaged notebooks ---------------------------------------------------------------------------------------
    Example("not_json", "an upload that is not a notebook", raw=b"this is my essay, not a notebook\n",
            expected={"cnn": 0, "unet": 0, "finetune": 0}, messages={"cnn": "JSON"}),
    Example("deleted_unet_cell", "the UNet answer cell was deleted", notebook_edit=_delete("unet_model"),
            expected={"cnn": 2, "unet": 0, "finetune": 2}, messages={"notes": "unet_model"}),
    # the cell still runs where it is, as in nbgrader (whose test cells would pass too); the student is told
    Example("renamed_grade_id", "the fine-tune setup cell's grade id was renamed", notebook_edit=_rename("finetune_setup", "my_setup"),
            expected={"cnn": 2, "unet": 2, "finetune": 2}, messages={"notes": "finetune_setup"}),
    Example("edited_locked_tests", "visible CNN tests deleted from the locked test cell, with a broken CNN",
            dict([FLAWED["cnn_nn_conv2d"]]), notebook_edit=_edit_locked_test,
            expected={"cnn": 0, "unet": 2, "finetune": 2}, messages={"cnn": "use MyConv2d, not nn.Conv2d"}),
]
BY_NAME = {example.name: example for example in EXAMPLES}
# The most a correct submission scores per part on this grader: Part C's training check cannot run without
# pretrained weights and the official masks, so it is "not run" (0 points until regraded).
REACHABLE = {"cnn": 2, "unet": 2, "finetune": 2, "learning": 2}


def build(example, path):
    """Write ``example`` as a notebook file at ``path``."""
    path = Path(path)
    if example.raw is not None:
        path.write_bytes(example.raw)
        return path
    nb = json.loads(RELEASED.read_text())
    cells = _cells(nb)
    for grade_id in SOLUTION_CELLS:
        cells[grade_id]["source"] = reference_source(grade_id)
    for grade_id, source in example.edits.items():
        cells[grade_id]["source"] = source
    if example.notebook_edit:
        example.notebook_edit(nb)
    path.write_text(json.dumps(nb, indent=1))
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    out.mkdir(parents=True, exist_ok=True)
    for example in EXAMPLES:
        print(build(example, out / f"{example.name}.ipynb"), "-", example.what)
