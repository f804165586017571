"""Several networks of one architecture (the seeds of one config) run as one: a stacked model.

A ResNet-20 step at 128 images is too small to fill a GPU; K seeds in K processes share it badly
(each launches its own few hundred kernels). :class:`StackedNetworks` keeps the K networks'
parameters and buffers stacked on a leading dimension (K, ...) and calls the one architecture on
all of them at once under ``torch.func.vmap``, which turns every convolution into one grouped
convolution and every BatchNorm into one over K x C channels: about the kernel count of one
network (plus a few reshapes), K times the work per kernel.

To :class:`ait.engine.trainer.BranchTrainer` it is one network whose batch interleaves the seeds:
sample j of each view's batch belongs to seed ``j % K``. Each view's batch is a multiple of K
(:attr:`StackedNetworks.batch_multiple`, which the trainer checks), so the view-major batches the
trainer builds give each seed its own views in the same order, and each seed's BatchNorm sees only
its own samples (the caveat of stacking BatchNorm networks: statistics never mix across seeds).
The trainer's losses are means over the whole batch, that is (1/K) x the sum of the seeds' own
means, so the gradients flowing back into the outputs are scaled by K: each seed's gradient equals
what its own network gets from its own samples (tests/models/test_stacked.py), and an SGD or AdamW
step over the stacked parameters is K independent steps.

What is shared: one step, so one learning-rate schedule, one non-finite guard (a non-finite loss in
any seed skips the step of all) and one set of logged means. Dropout draws differently per seed.

    >>> import torch
    >>> from ait import models
    >>> nets = [models.create("resnet20", num_classes=10) for _ in range(3)]
    >>> stacked = StackedNetworks(nets)
    >>> tuple(stacked(torch.zeros(6, 3, 32, 32)).shape)  # 2 samples per seed, interleaved
    (6, 10)
    >>> plain = stacked.unstack()  # three resnet20s holding the trained weights
    >>> sorted(plain[1].state_dict()) == sorted(nets[1].state_dict())
    True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ait.models.base import ModelOutputs


def _mangle(name: str) -> str:  # module attribute names may not contain dots
    return name.replace(".", "__")


class _ForwardAll(nn.Module):
    """``forward`` is the wrapped network's ``forward_all``, as a tuple (what functional_call calls)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.net = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.forward_all(x))


class _ScaleGradient(torch.autograd.Function):
    """The identity, whose gradient is multiplied by ``scale``: part of the graph, so it survives
    copies, pickling and tensor swaps (a hook on the parameters would not)."""

    @staticmethod
    def forward(x: torch.Tensor, scale: float) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.scale = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


class StackedNetworks(nn.Module):
    """K networks of one architecture as one module over a batch whose sample j belongs to seed j % K.

    Args:
        networks: K >= 1 networks with ``forward_all`` (``ait.models.Classifier`` or adapted), of
            one architecture (equal parameter and buffer names and shapes), on one device.
    """

    def __init__(self, networks: Sequence[nn.Module]):
        super().__init__()
        networks = list(networks)
        if not networks:
            raise ValueError("StackedNetworks needs at least one network")
        _check_same_architecture(networks)
        self.k = len(networks)
        params, buffers = stack_module_state(networks)  # name -> (K, ...) copies
        trainable = {name: p.requires_grad for name, p in networks[0].named_parameters()}
        persistent = set(networks[0].state_dict())
        self._names = list(params) + list(buffers)
        self._saved = [name for name in self._names if name in params or name in persistent]  # what a state_dict holds
        for name, value in params.items():
            self.register_parameter(_mangle(name), nn.Parameter(value.detach(), requires_grad=trainable[name]))
        for name, value in buffers.items():
            self.register_buffer(_mangle(name), value, persistent=name in persistent)
        # The architecture alone, without storage: functional_call puts the stacked tensors in.
        # Kept out of the module tree, so that parameters(), state_dict() and .to() see the stacks only.
        object.__setattr__(self, "_template", _ForwardAll(copy.deepcopy(networks[0]).to("meta")))

    @property
    def batch_multiple(self) -> int:
        """What every view's batch must be a multiple of (the trainer checks it): K."""
        return self.k

    def to(self, *args, **kwargs) -> StackedNetworks:
        """As ``nn.Module.to``; ``memory_format=torch.channels_last`` also lays out each seed's 4-D
        weight (a (K, O, I, kh, kw) stack, which the plain conversion refuses) and its gradient as
        channels_last. Call it before the optimiser is built, as for any module."""
        channels_last = kwargs.get("memory_format") is torch.channels_last
        if channels_last:
            kwargs.pop("memory_format")
        super().to(*args, **kwargs)
        if channels_last:
            for p in self.parameters():
                if p.dim() == 5:  # K stacked conv weights: each slice, and their grouped reshape, NHWC
                    p.data = _nhwc_slices(p.data)
                    if p.grad is not None:
                        p.grad = _nhwc_slices(p.grad)
        return self

    def train(self, mode: bool = True) -> StackedNetworks:
        super().train(mode)
        self._template.train(mode)  # BatchNorm and dropout read the template's flag
        return self

    def stacked_state(self) -> dict[str, torch.Tensor]:
        """The networks' parameter and buffer names -> their stacked tensors (K, ...)."""
        return {name: getattr(self, _mangle(name)) for name in self._names}

    def forward_all(self, x: torch.Tensor) -> ModelOutputs:
        """(M, C, H, W), sample j for seed j % K (M a multiple of K) -> ModelOutputs of M samples."""
        m = x.shape[0]
        if m % self.k:
            raise ValueError(f"a batch for {self.k} stacked networks needs a multiple of {self.k} samples, got {m}")
        per_seed = x.view(m // self.k, self.k, *x.shape[1:])  # (M/K, K, C, H, W), a view
        state = {f"net.{name}": value for name, value in self.stacked_state().items()}

        def one(state_k, x_k):
            return functional_call(self._template, state_k, (x_k,))

        outputs = vmap(one, in_dims=(0, 1), out_dims=1, randomness="different")(state, per_seed)
        # (M/K, K, ...) -> (M, ...); the trainer's means over K seeds' samples give each 1/K of its gradient
        return ModelOutputs(*(_ScaleGradient.apply(o.reshape(m, *o.shape[2:]), float(self.k)) for o in outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """One plain state dict per seed (views of the stacks), loadable into the original network."""
        stacked = self.stacked_state()
        return [{name: stacked[name][k].detach() for name in self._saved} for k in range(self.k)]

    def unstack(self) -> list[nn.Module]:
        """K independent networks of the original class holding copies of the current parameters and
        buffers (their dtype and device included)."""
        plain = []
        for k in range(self.k):
            net = copy.deepcopy(self._template.net)  # on the meta device: every tensor is replaced below
            for name, value in self.stacked_state().items():
                owner, _, attr = name.rpartition(".")
                module = net.get_submodule(owner)
                if isinstance(value, nn.Parameter):
                    module._parameters[attr] = nn.Parameter(value[k].detach().clone(), value.requires_grad)
                else:
                    module._buffers[attr] = value[k].detach().clone()
            plain.append(net.train(self.training))
        return plain


def _nhwc_slices(stack: torch.Tensor) -> torch.Tensor:
    """(K, O, I, kh, kw) with every [k] (and so the (K * O, I, kh, kw) reshape) channels_last."""
    return stack.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def _check_same_architecture(networks: list[nn.Module]) -> None:
    def layout(net: nn.Module) -> dict:
        tensors = [*net.named_parameters(), *net.named_buffers()]
        return {name: (tuple(t.shape), t.dtype, t.device, t.requires_grad) for name, t in tensors}

    first = layout(networks[0])
    for k, net in enumerate(networks[1:], start=1):
        if type(net) is not type(networks[0]) or layout(net) != first:
            raise ValueError(
                f"StackedNetworks: network {k} ({type(net).__name__}) differs from network 0 "
                f"({type(networks[0]).__name__}) in class or in its parameters' and buffers' names, shapes, "
                "dtypes, devices or requires_grad"
            )
