"""A small multilayer perceptron to use as encoder, expert, tower or head."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ._base import check_positive_int


class MLP(nn.Sequential):
    """Multilayer perceptron: ``Linear → activation → dropout → … → Linear``.

    Any module works wherever polytask asks for an encoder, expert, tower or head; this
    one is a convenience for the common fully-connected case.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(in_features, hidden_1, ..., out_features)``, at least two.
    activation : callable returning nn.Module, default=nn.ReLU
        Builds the activation placed after every linear layer but the last.
    dropout : float, default=0.0
        Dropout probability after each hidden activation, in ``[0, 1)``.
    activate_last : bool, default=False
        Also apply the activation after the last linear layer (useful for an encoder
        or an expert whose output feeds another linear layer).

    Raises
    ------
    TypeError
        If a size is not an int, or ``activation`` is a module instance or does not
        build an ``nn.Module``.
    ValueError
        If fewer than two sizes are given, a size is < 1 or ``dropout`` is outside
        ``[0, 1)``.

    Examples
    --------
    >>> import torch
    >>> mlp = MLP([4, 16, 3], dropout=0.1)
    >>> mlp(torch.randn(5, 4)).shape
    torch.Size([5, 3])
    >>> [type(m).__name__ for m in mlp]
    ['Linear', 'ReLU', 'Dropout', 'Linear']
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Callable[[], nn.Module] = nn.ReLU,
        dropout: float = 0.0,
        activate_last: bool = False,
    ) -> None:
        if not isinstance(sizes, Sequence) or isinstance(sizes, str):
            raise TypeError(f"sizes must be a sequence of ints, got {type(sizes).__name__}")
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must hold at least two widths (in and out features), got {list(sizes)}"
            )
        widths = [check_positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"dropout must be a real number, got {type(dropout).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if isinstance(activation, nn.Module):
            raise TypeError("activation must build a module (e.g. nn.ReLU), not a module instance")
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {type(activation).__name__}")
        layers: list[nn.Module] = []
        n_layers = len(widths) - 1
        for i in range(n_layers):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            last = i == n_layers - 1
            if not last or activate_last:
                act = activation()
                if not isinstance(act, nn.Module):
                    raise TypeError(
                        f"activation must build a torch.nn.Module, got {type(act).__name__}"
                    )
                layers.append(act)
            if not last and dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
