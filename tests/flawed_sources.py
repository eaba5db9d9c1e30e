"""Flawed twins of the reference solution: small source edits that read like student submissions.

``FLAWED``: name -> (grade_id, source) of the edited cell; ``EXPECTED_FAILURES``: name -> the checks of that
cell's part the twin must fail (every other check of the part must pass). ``VARIANTS``: correct alternatives
(name -> (grade_id, source)) that must pass every check of their part. Reusable for the example-submission
corpus: put the source into the cell with that grade_id of a copy of the release notebook.

Every edit is a string replacement on the master's cell source and asserts that the replaced text occurs the
expected number of times, so a change of the master notebook breaks this module loudly instead of silently
turning a twin into the reference.
"""
from tests.reference_solution import reference_source

PART_OF_CELL = {"cnn_model": "cnn", "unet_model": "unet", "finetune_train": "finetune", "finetune_setup": "finetune"}


def _edit(grade_id, *replacements):
    """Apply (old, new[, count]) replacements to the reference source of ``grade_id``."""
    source = reference_source(grade_id)
    for replacement in replacements:
        old, new, count = (replacement + (1,))[:3]
        found = source.count(old)
        if found != count:
            raise AssertionError(f"{grade_id}: expected {count} occurrence(s) of {old!r}, found {found}")
        source = source.replace(old, new)
    return grade_id, source


CNN_FORWARD_RETURN = "        return self.finalconv(x)\n"

_FUNCTIONAL_FINAL = """\
        return torch.nn.functional.conv2d(x, self.finalconv.weight, self.finalconv.bias, padding=self.finalconv.padding)
"""
_ALIASED_FINAL = """\
        from torch.nn.functional import conv2d as convolve
        return convolve(x, self.finalconv.weight, self.finalconv.bias, padding=self.finalconv.padding)
"""
_UNFOLD_FINAL = """\
        w = self.finalconv.weight
        n, _, height, width = x.shape
        patches = torch.nn.functional.unfold(x, w.shape[-1], padding=w.shape[-1] // 2)
        out = (w.flatten(1) @ patches).view(n, w.shape[0], height, width)
        return out + self.finalconv.bias.view(1, -1, 1, 1)
"""

_EINSUM_FINAL = """\
        w, b = self.finalconv.weight, self.finalconv.bias
        k = w.shape[-1]
        windows = torch.nn.functional.pad(x, (k // 2,) * 4).unfold(2, k, 1).unfold(3, k, 1)
        return torch.einsum("nchwij,ocij->nohw", windows, w) + b.view(1, -1, 1, 1)
"""
_UNET_RETURN = "        return self.finalconv(torch.cat([up2, x], dim=1))\n"
_UNET_FUNCTIONAL_FINAL = """\
        return torch.nn.functional.conv2d(torch.cat([up2, x], dim=1), self.finalconv.weight, self.finalconv.bias,
                                          padding=self.finalconv.padding)
"""

_TRAIN_MODE_LOOP = """\
    model.train()
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for images, masks in train_loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images)["out"], masks)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(train_loader))
    return losses
"""
_SGD_EVAL_LOOP = """\
    optimizer = torch.optim.SGD(learned_parameters, lr=learn_rate, momentum=0.9)
    model.eval()
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for images, masks in train_loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images)["out"], masks)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(train_loader))
    return losses
"""
_HELPER_CALL = "    return run_finetune_epochs(model, train_loader, optimizer, epochs, device)"
_REFERENCE_SELECTION = (
    "        if name.startswith(\"classifier.4\"):\n"
    "            learned_parameters.append(parameter)\n"
)
_FREEZE_THEN_REPLACE = (
    "    model.requires_grad_(False)\n"
    "    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)\n"
)

FLAWED = {
    # ---------------------------------------------------------------------------------------------- CNN
    "cnn_nn_conv2d": _edit("cnn_model", ("MyConv2d(num_in_channels, nf, kernel)",
                                         "nn.Conv2d(num_in_channels, nf, kernel, padding=kernel // 2)")),
    "cnn_functional_conv": _edit("cnn_model", (CNN_FORWARD_RETURN, _FUNCTIONAL_FINAL)),
    "cnn_aliased_conv": _edit("cnn_model", (CNN_FORWARD_RETURN, _ALIASED_FINAL)),
    "cnn_unfold_conv": _edit("cnn_model", (CNN_FORWARD_RETURN, _UNFOLD_FINAL)),
    "cnn_wrong_batchnorm": _edit("cnn_model", ("nn.MaxPool2d(2), nn.BatchNorm2d(nf)",
                                               "nn.MaxPool2d(2), nn.BatchNorm2d(2 * nf)")),
    "cnn_missing_relu": _edit("cnn_model", ("nn.BatchNorm2d(2 * nf), nn.ReLU())", "nn.BatchNorm2d(2 * nf))")),
    "cnn_pool_bn_swapped": _edit("cnn_model", ("nn.MaxPool2d(2), nn.BatchNorm2d(2 * nf)",
                                               "nn.BatchNorm2d(2 * nf), nn.MaxPool2d(2)")),
    "cnn_hardcoded_size": _edit("cnn_model",
                                ("nn.Upsample(scale_factor=2), nn.BatchNorm2d(nf)", "nn.Upsample(size=(16, 16)), nn.BatchNorm2d(nf)"),
                                ("nn.Upsample(scale_factor=2), nn.BatchNorm2d(nc)", "nn.Upsample(size=(32, 32)), nn.BatchNorm2d(nc)")),
    "cnn_hardcoded_kernel": _edit("cnn_model", ("self.finalconv = MyConv2d(nc, nc, kernel)",
                                                "self.finalconv = MyConv2d(nc, nc, 3)")),
    "cnn_extra_parameter": _edit("cnn_model",
                                 ("self.finalconv = MyConv2d(nc, nc, kernel)\n",
                                  "self.finalconv = MyConv2d(nc, nc, kernel)\n"
                                  "        self.temperature = nn.Parameter(torch.ones(1))\n"),
                                 (CNN_FORWARD_RETURN, "        return self.finalconv(x) / self.temperature\n")),
    "cnn_wrong_signature": _edit("cnn_model", ("def __init__(self, kernel, num_filters, num_colours, num_in_channels):",
                                               "def __init__(self, kernel, num_filters, num_colours):"),
                                 ("MyConv2d(num_in_channels, nf, kernel)", "MyConv2d(1, nf, kernel)")),
    "cnn_renamed": _edit("cnn_model", ("class CNN(nn.Module):", "class ColourCNN(nn.Module):")),
    # an extra convolution kept out of the module system (object.__setattr__): no registered module shows it
    "cnn_unregistered_conv": _edit("cnn_model",
                                   ("self.finalconv = MyConv2d(nc, nc, kernel)\n",
                                    "self.finalconv = MyConv2d(nc, nc, kernel)\n"
                                    "        object.__setattr__(self, 'smooth', nn.Conv2d(nc, nc, 3, padding=1))\n"),
                                   (CNN_FORWARD_RETURN, "        return self.finalconv(self.smooth(x))\n")),
    # the last convolution computed with einsum over the layer's own weights (no F.conv2d, no F.unfold)
    "cnn_einsum_conv": _edit("cnn_model", (CNN_FORWARD_RETURN, _EINSUM_FINAL)),
    # a flaw in training mode only: rfconv is skipped while training (evaluation mode is the handout's)
    "cnn_rfconv_skipped_in_training": _edit("cnn_model", ("        x = self.rfconv(x)\n",
                                                          "        if not self.training:\n"
                                                          "            x = self.rfconv(x)\n")),
    # --------------------------------------------------------------------------------------------- UNet
    "unet_missing_skip": _edit("unet_model", ("MyConv2d(4 * nf, nf, kernel)", "MyConv2d(2 * nf, nf, kernel)"),
                               ("self.upconv1(torch.cat([rf, down2], dim=1))", "self.upconv1(rf)")),
    "unet_zero_skip": _edit("unet_model", ("torch.cat([up1, down1], dim=1)",
                                           "torch.cat([up1, torch.zeros_like(down1)], dim=1)")),
    "unet_detached_skip": _edit("unet_model", ("torch.cat([up1, down1], dim=1)",
                                               "torch.cat([up1, down1.detach()], dim=1)")),
    "unet_rf_twice": _edit("unet_model", ("torch.cat([rf, down2], dim=1)", "torch.cat([rf, rf], dim=1)")),
    "unet_constant_input_skip": _edit("unet_model", ("torch.cat([up2, x], dim=1)",
                                                     "torch.cat([up2, torch.ones_like(x)], dim=1)")),
    "unet_wrong_final_channels": _edit("unet_model", ("MyConv2d(nc + num_in_channels, nc, kernel)",
                                                      "MyConv2d(nc, nc, kernel)"),
                                       ("self.finalconv(torch.cat([up2, x], dim=1))", "self.finalconv(up2)")),
    "unet_nn_conv2d": _edit("unet_model", ("self.finalconv = MyConv2d(nc + num_in_channels, nc, kernel)",
                                           "self.finalconv = nn.Conv2d(nc + num_in_channels, nc, kernel, "
                                           "padding=kernel // 2)")),
    "unet_functional_conv": _edit("unet_model", (_UNET_RETURN, _UNET_FUNCTIONAL_FINAL)),
    # numerically zero, but its gradient is down1's: a skip in name only
    "unet_zero_skip_with_gradient": _edit("unet_model", ("torch.cat([up1, down1], dim=1)",
                                                         "torch.cat([up1, down1 - down1.detach()], dim=1)")),
    # rfconv runs, but its output is never used
    "unet_rfconv_unused": _edit("unet_model", ("torch.cat([rf, down2], dim=1)", "torch.cat([down2, down2], dim=1)")),
    # a flaw in training mode only: the decoder's output is detached while training
    "unet_detached_in_training": _edit("unet_model", ("        return self.finalconv(",
                                                      "        if self.training:\n            up2 = up2.detach()\n"
                                                      "        return self.finalconv(")),
    "unet_hardcoded_size": _edit("unet_model",
                                 ("nn.Upsample(scale_factor=2), nn.BatchNorm2d(nf)", "nn.Upsample(size=(16, 16)), nn.BatchNorm2d(nf)"),
                                 ("nn.Upsample(scale_factor=2), nn.BatchNorm2d(nc)", "nn.Upsample(size=(32, 32)), nn.BatchNorm2d(nc)")),
    # ----------------------------------------------------------------------------------------- Part C
    "ft_nothing_frozen": _edit("finetune_setup", ("    model.requires_grad_(False)\n", "")),
    "ft_everything_frozen": _edit("finetune_setup", (_FREEZE_THEN_REPLACE,
                                                     "    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)\n"
                                                     "    model.requires_grad_(False)\n")),
    "ft_21_classes": _edit("finetune_setup", ("nn.Conv2d(256, 2, kernel_size=1)", "nn.Conv2d(256, 21, kernel_size=1)")),
    "ft_1_class": _edit("finetune_setup", ("nn.Conv2d(256, 2, kernel_size=1)", "nn.Conv2d(256, 1, kernel_size=1)")),
    "ft_no_bias": _edit("finetune_setup", ("nn.Conv2d(256, 2, kernel_size=1)",
                                           "nn.Conv2d(256, 2, kernel_size=1, bias=False)")),
    "ft_sliced_head": _edit("finetune_setup", (_FREEZE_THEN_REPLACE,
                                               "    model.requires_grad_(False)\n"
                                               "    old = model.classifier[4]\n"
                                               "    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)\n"
                                               "    model.classifier[4].weight.data = old.weight.data[:2].clone()\n"
                                               "    model.classifier[4].bias.data = old.bias.data[:2].clone()\n")),
    "ft_all_params_to_optimizer": _edit("finetune_train", (_REFERENCE_SELECTION,
                                                           "        learned_parameters.append(parameter)\n")),
    "ft_train_mode_loop": _edit("finetune_train", (_HELPER_CALL, _TRAIN_MODE_LOOP)),
    "ft_empty_optimizer": _edit("finetune_train", (_REFERENCE_SELECTION, "        pass\n")),
    "ft_requires_grad_filter": _edit("finetune_train", (_REFERENCE_SELECTION,
                                                        "        if parameter.requires_grad:\n"
                                                        "            learned_parameters.append(parameter)\n")),
    "ft_no_step": _edit("finetune_train", (_HELPER_CALL,
                                           "    return [0.0 for _ in range(epochs)]  # TODO: call the loop\n")),
}

_CNN, _UNET = ("cnn_layers", "cnn_only_myconv", "cnn_output_shapes", "cnn_parameter_counts"), (
    "unet_layers", "unet_only_myconv", "unet_skips", "unet_shapes_and_parameters")

EXPECTED_FAILURES = {
    "cnn_nn_conv2d": {"cnn_layers", "cnn_only_myconv"},
    "cnn_functional_conv": {"cnn_only_myconv"},
    "cnn_aliased_conv": {"cnn_only_myconv"},
    "cnn_unfold_conv": {"cnn_only_myconv"},
    # a BatchNorm of the wrong size cannot run at all: nothing can be verified
    "cnn_wrong_batchnorm": set(_CNN),
    "cnn_missing_relu": {"cnn_layers"},
    "cnn_pool_bn_swapped": {"cnn_layers"},
    "cnn_hardcoded_size": {"cnn_layers", "cnn_output_shapes"},
    "cnn_hardcoded_kernel": {"cnn_layers", "cnn_parameter_counts"},
    "cnn_extra_parameter": {"cnn_parameter_counts"},
    "cnn_wrong_signature": set(_CNN),
    "cnn_renamed": set(_CNN),
    "cnn_unregistered_conv": {"cnn_only_myconv", "cnn_output_shapes"},
    "cnn_einsum_conv": {"cnn_only_myconv"},
    "cnn_rfconv_skipped_in_training": {"cnn_output_shapes"},
    "unet_missing_skip": {"unet_layers", "unet_skips", "unet_shapes_and_parameters"},
    "unet_zero_skip": {"unet_skips"},
    "unet_detached_skip": {"unet_skips"},
    "unet_rf_twice": {"unet_skips"},
    "unet_constant_input_skip": {"unet_skips"},
    "unet_wrong_final_channels": {"unet_layers", "unet_skips", "unet_shapes_and_parameters"},
    "unet_nn_conv2d": {"unet_layers", "unet_only_myconv"},
    "unet_functional_conv": {"unet_only_myconv"},
    "unet_zero_skip_with_gradient": {"unet_skips"},
    "unet_rfconv_unused": {"unet_skips"},
    "unet_detached_in_training": {"unet_skips"},
    "unet_hardcoded_size": {"unet_layers", "unet_skips", "unet_shapes_and_parameters"},
    "ft_nothing_frozen": {"finetune_frozen"},
    "ft_everything_frozen": {"finetune_frozen"},
    "ft_21_classes": {"finetune_head_replaced"},
    "ft_1_class": {"finetune_head_replaced"},
    "ft_no_bias": {"finetune_head_replaced"},
    "ft_sliced_head": {"finetune_head_replaced"},
    "ft_all_params_to_optimizer": {"finetune_optimizer_params"},
    "ft_train_mode_loop": {"finetune_one_step"},
    "ft_empty_optimizer": {"finetune_optimizer_params", "finetune_one_step"},
    # the optimizer may be right, but it is never stepped: nothing shows that it holds classifier.4
    "ft_no_step": {"finetune_one_step", "finetune_optimizer_params"},
    # optimises whatever requires a gradient: right after freeze_and_replace, but not what train() is asked to do
    "ft_requires_grad_filter": {"finetune_optimizer_params"},
}

VARIANTS = {
    "cnn_bilinear_upsample": _edit("cnn_model", ("nn.Upsample(scale_factor=2)",
                                                 "nn.Upsample(scale_factor=2, mode=\"bilinear\")", 2)),
    "cnn_relu_inplace": _edit("cnn_model", ("nn.ReLU()", "nn.ReLU(inplace=True)", 5)),
    "cnn_forward_method": _edit("cnn_model", (CNN_FORWARD_RETURN, "        return self.finalconv.forward(x)\n")),
    "unet_cat_order_swapped": _edit("unet_model", ("torch.cat([rf, down2], dim=1)", "torch.cat([down2, rf], dim=1)"),
                                    ("torch.cat([up1, down1], dim=1)", "torch.cat([down1, up1], dim=1)"),
                                    ("torch.cat([up2, x], dim=1)", "torch.cat((x, up2), 1)")),
    "unet_input_skip_detached": _edit("unet_model", ("torch.cat([up2, x], dim=1)", "torch.cat([up2, x.detach()], dim=1)")),
    "ft_returns_none": _edit("finetune_setup", ("    return model", "")),
    "ft_sgd_own_loop_eval": _edit("finetune_train",
                                  ("    optimizer = torch.optim.Adam(learned_parameters, lr=learn_rate)\n", ""),
                                  (_HELPER_CALL, _SGD_EVAL_LOOP)),
    "ft_train_mode_before_helper": _edit("finetune_train", (_HELPER_CALL, "    model.train()\n" + _HELPER_CALL)),
}

assert set(FLAWED) == set(EXPECTED_FAILURES), set(FLAWED) ^ set(EXPECTED_FAILURES)
