"""Hard parameter sharing: one shared encoder, one head per task."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import Tensor, nn

from ._base import Architecture, Features, check_module, check_module_mapping


class SharedBottom(Architecture):
    r"""Hard parameter sharing: a shared encoder followed by one head per task.

    .. math:: \hat y_t = h_t(f(x)), \qquad t = 1, \dots, T

    The encoder ``f`` is shared by all tasks; head ``h_t`` belongs to task ``t`` only,
    so a loss on task ``s`` never reaches the head of another task. Any modules work
    (MLP, CNN, transformer), as long as each head accepts the encoder's output.

    Parameters
    ----------
    encoder : nn.Module
        The shared bottom, ``x -> z``.
    heads : mapping of str to nn.Module
        One head per task, ``z -> prediction``; the mapping's order fixes
        :attr:`task_names`.

    Attributes
    ----------
    encoder : nn.Module
        The shared encoder.
    heads : nn.ModuleList
        The heads, in task order.

    Raises
    ------
    TypeError
        If ``encoder`` or a head is not an ``nn.Module``, or ``heads`` is not a mapping.
    ValueError
        If ``heads`` is empty or one module is used both as encoder and as a head (or as
        two heads).

    Notes
    -----
    ``supports_representation`` is True: ``encode(x)`` is the encoder's output ``z`` and
    ``decode(z, x)`` applies the heads.

    References
    ----------
    .. [1] Caruana, R. (1997). Multitask learning. *Machine Learning*, 28(1), 41-75.

    Examples
    --------
    >>> import torch
    >>> from polytask.deep.architectures import MLP
    >>> model = SharedBottom(
    ...     MLP([10, 32, 16], activate_last=True),
    ...     {"price": MLP([16, 1]), "category": MLP([16, 8, 5])},
    ... )
    >>> out = model(torch.randn(4, 10))
    >>> {task: tuple(pred.shape) for task, pred in out.items()}
    {'price': (4, 1), 'category': (4, 5)}
    >>> z = model.encode(torch.randn(4, 10))
    >>> tuple(z.shape)
    (4, 16)
    """

    supports_representation = True

    def __init__(self, encoder: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        check_module(encoder, "encoder")
        names = check_module_mapping(heads, "heads")
        super().__init__(names)
        self.encoder = encoder
        self.heads = nn.ModuleList(heads[t] for t in names)
        self._check_parameter_partition()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Predict every task; see :meth:`Architecture.forward`."""
        return self.decode(self.encode(x), x)

    def encode(self, x: Tensor) -> Features:
        """Return the encoder's output; see :meth:`Architecture.encode`."""
        out: Features = self.encoder(x)
        return out

    def decode(self, features: Features, x: Tensor) -> dict[str, Tensor]:
        """Apply each head to the features; see :meth:`Architecture.decode`."""
        return {t: head(features) for t, head in zip(self.task_names, self.heads, strict=True)}

    def _shared_modules(self) -> Iterable[nn.Module]:
        return (self.encoder,)

    def _task_modules(self, index: int) -> Iterable[nn.Module]:
        return (self.heads[index],)
