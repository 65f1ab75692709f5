"""Adam with the per-step Python overhead removed.

``torch.optim.Adam(fused=True)`` already updates all tensors in one fused kernel, but each
``step()`` spends more time in Python (hooks, regrouping tensors by device and dtype) than
in that kernel at these network sizes. :class:`FastAdam` keeps a real ``torch.optim.Adam``
(so ``state_dict``/``load_state_dict`` and checkpoints are the standard ones) and calls the
same fused kernel directly with tensor lists built once. Where the fused kernel is missing
(another torch build) it falls back to ``Adam.step()``; the arithmetic is the same.
"""

from __future__ import annotations

from typing import Any

import torch


class FastAdam:
    """Adam (no weight decay, no amsgrad) over ``params``: ``zero_grad()``, ``step()``."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float) -> None:
        self.params = list(params)
        try:
            self.optimizer = torch.optim.Adam(self.params, lr=lr, fused=True)
            self._fused = hasattr(torch, "_fused_adam_")
        except (RuntimeError, ValueError):  # no fused Adam for this device
            self.optimizer = torch.optim.Adam(self.params, lr=lr, foreach=True)
            self._fused = False
        self._lists: tuple[list[torch.Tensor], ...] | None = None

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        if not self._fused:
            self.optimizer.step()
            return
        if self._lists is None:
            self._lists = self._state_lists()
        exp_avgs, exp_avg_sqs, steps = self._lists
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            raise ValueError("FastAdam.step: a parameter has no gradient")
        self._counter.add_(1)  # every parameter's step count (views of this one tensor)
        torch._fused_adam_(
            self.params, grads, exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
        )  # fmt: skip

    def _state_lists(self) -> tuple[list[torch.Tensor], ...]:
        """Create the Adam state exactly as torch.optim.Adam(fused=True) does, once."""
        group = self.optimizer.param_groups[0]
        if len(self.optimizer.param_groups) != 1 or group["amsgrad"]:
            raise ValueError("FastAdam supports one parameter group without amsgrad")
        for p in self.params:
            state = self.optimizer.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        states = [self.optimizer.state[p] for p in self.params]
        # All parameters step together: their step counts become views of one tensor, so
        # one add counts a step (a foreach add over scalars costs more than the update of
        # the temperature itself).
        self._counter = torch.stack([s["step"] for s in states])
        for i, s in enumerate(states):
            s["step"] = self._counter[i]
        return (
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
        )

    def state_dict(self) -> dict[str, Any]:
        state_dict = self.optimizer.state_dict()
        # Own copies of the step counts: the live ones share one tensor (see _state_lists).
        state_dict["state"] = {
            index: {k: v.clone() if k == "step" else v for k, v in entry.items()}
            for index, entry in state_dict["state"].items()
        }
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)
        self._lists = None  # the state tensors were replaced
