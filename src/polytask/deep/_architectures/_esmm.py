"""Entire space multi-task model (ESMM), built on :class:`TaskGraph`."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import check_module
from ._task_graph import TaskGraph, TaskNode


class _Tower(nn.Module):
    """A user tower, optionally followed by a sigmoid (keeps ``state_dict`` keys stable)."""

    def __init__(self, tower: nn.Module, probability: bool) -> None:
        super().__init__()
        self.tower = tower
        self.probability = probability

    def forward(self, z: Tensor) -> Tensor:
        out: Tensor = self.tower(z)
        return torch.sigmoid(out) if self.probability else out


class _Product(nn.Module):
    """pCTCVR = pCTR · pCVR, from probabilities."""

    def forward(self, p_ctr: Tensor, p_cvr: Tensor) -> Tensor:
        return p_ctr * p_cvr


class _LogitOfProduct(nn.Module):
    """logit(σ(a) σ(b)), finite and accurate for any finite logits ``a``, ``b``.

    With p = σ(a) σ(b): log p = log σ(a) + log σ(b), and
    1 - p = σ(-a) + σ(-b) σ(a), so log(1 - p) is a log-sum-exp of log-sigmoids.
    """

    def forward(self, ctr_logit: Tensor, cvr_logit: Tensor) -> Tensor:
        log_p = F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)
        log_1mp = torch.logaddexp(
            F.logsigmoid(-ctr_logit), F.logsigmoid(-cvr_logit) + F.logsigmoid(ctr_logit)
        )
        return log_p - log_1mp


class ESMM(TaskGraph):
    r"""Entire space multi-task model for post-click conversion rate estimation.

    A shared encoder (e.g. the feature embeddings) feeds a click-through (CTR) tower
    and a conversion (CVR) tower. The model outputs three tasks,

    .. math::

        p_{CTR} = \sigma(\mathrm{ctr}(z)), \quad p_{CVR} = \sigma(\mathrm{cvr}(z)),
        \quad p_{CTCVR} = p_{CTR} \cdot p_{CVR}, \qquad z = \mathrm{encoder}(x),

    and is trained on *all impressions* with losses on CTR (label: click) and CTCVR
    (label: click and conversion) only,
    :math:`L = \mathrm{BCE}(p_{CTR}, y) + \mathrm{BCE}(p_{CTCVR}, y \cdot c)`. The CVR
    tower is learnt only through the product, which removes the sample selection
    bias of training CVR on clicked impressions. Built on :class:`TaskGraph` with
    nodes ``"ctr"``, ``"cvr"`` (read ``"shared"``) and ``"ctcvr"`` (reads both).

    Parameters
    ----------
    encoder : nn.Module
        Shared encoder, ``x -> z``.
    ctr_tower : nn.Module
        ``z -> (batch, 1)`` click logit.
    cvr_tower : nn.Module
        ``z -> (batch, 1)`` conversion logit.
    output : {"probability", "logit"}, default="probability"
        ``"probability"``: the outputs are :math:`p_{CTR}, p_{CVR}, p_{CTCVR}`, with
        :math:`p_{CTCVR} = p_{CTR} p_{CVR}` exactly; train with binary cross-entropy
        **on probabilities**, clamped away from 0 and 1, e.g.
        ``F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y)`` (never a with-logits
        loss). ``"logit"``: the outputs are the logits of the same three
        probabilities, the CTCVR one computed stably in log space (finite for
        any finite logits); train with
        ``F.binary_cross_entropy_with_logits``.

    Attributes
    ----------
    output : str
        The output mode.

    Raises
    ------
    TypeError
        If a tower or the encoder is not an ``nn.Module``.
    ValueError
        If ``output`` is not "probability" or "logit", or a module is passed twice.

    Notes
    -----
    :attr:`task_names` is ``("ctr", "cvr", "ctcvr")``. Shared parameters: the encoder;
    ``task_parameters("ctr")``/``("cvr")``: the towers; ``"ctcvr"`` owns none. The
    CTCVR loss reaches both towers.

    References
    ----------
    .. [1] Ma, X., Zhao, L., Huang, G., Wang, Z., Hu, Z., Zhu, X., & Gai, K. (2018).
       Entire space multi-task model: an effective approach for estimating post-click
       conversion rate. *SIGIR*.

    Examples
    --------
    >>> import torch
    >>> from torch.nn import functional as F
    >>> from polytask.deep.architectures import MLP
    >>> model = ESMM(MLP([6, 16], activate_last=True), MLP([16, 8, 1]), MLP([16, 8, 1]))
    >>> x = torch.randn(32, 6)
    >>> click = (torch.rand(32, 1) < 0.3).float()
    >>> buy = click * (torch.rand(32, 1) < 0.5).float()
    >>> out = model(x)
    >>> bool(torch.equal(out["ctcvr"], out["ctr"] * out["cvr"]))
    True
    >>> def bce(p, y):
    ...     return F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y)
    >>> loss = bce(out["ctr"], click) + bce(out["ctcvr"], buy)
    >>> loss.backward()
    >>> all(p.grad is not None for p in model.task_parameters("cvr"))
    True
    """

    def __init__(
        self,
        encoder: nn.Module,
        ctr_tower: nn.Module,
        cvr_tower: nn.Module,
        output: Literal["probability", "logit"] = "probability",
    ) -> None:
        check_module(encoder, "encoder")
        check_module(ctr_tower, "ctr_tower")
        check_module(cvr_tower, "cvr_tower")
        if output not in ("probability", "logit"):
            raise ValueError(f"output must be 'probability' or 'logit', got {output!r}")
        probability = output == "probability"
        product: nn.Module = _Product() if probability else _LogitOfProduct()
        nodes = {
            "ctr": TaskNode(_Tower(ctr_tower, probability), inputs=("shared",)),
            "cvr": TaskNode(_Tower(cvr_tower, probability), inputs=("shared",)),
            "ctcvr": TaskNode(product, inputs=("ctr", "cvr")),
        }
        super().__init__(nodes, encoder=encoder)
        self.output = output

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, output={self.output!r}"
