"""Molecule featurisation and splits: Morgan (ECFP) fingerprints, scaffold and random splits.

RDKit is an optional dependency (``pip install polytask[chem]``); it is imported only
when a function needs it. :func:`random_split` needs no RDKit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from polytask.data._splits import RandomState, as_rng, random_parts

IntArray = NDArray[np.intp]


def _rdkit() -> tuple[ModuleType, ModuleType]:
    """Import RDKit's ``Chem`` and ``rdBase``, or explain how to install it."""
    try:
        from rdkit import Chem, rdBase
    except ImportError as err:
        raise ImportError(
            "this function needs RDKit, an optional dependency of polytask: "
            "pip install polytask[chem]  (or: pip install rdkit)"
        ) from err
    return Chem, rdBase


def _check_smiles(smiles: Any) -> list[str]:
    if isinstance(smiles, str) or not isinstance(smiles, Sequence | np.ndarray):
        raise TypeError(f"smiles must be a sequence of str, got {type(smiles).__name__}")
    items = list(smiles)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"smiles[{i}] must be a str, got {type(item).__name__} ({item!r})")
    return items


def _positive_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _parse(smiles: list[str]) -> list[Any]:
    """RDKit molecules (``None`` where a SMILES does not parse), RDKit's log silenced."""
    Chem, rdBase = _rdkit()
    with rdBase.BlockLogs():
        return [Chem.MolFromSmiles(s) if s.strip() else None for s in smiles]


def _warn_failures(n_failed: int, n: int, what: str) -> None:
    if n_failed:
        warnings.warn(
            f"RDKit could not parse {n_failed} of {n} SMILES; {what}",
            UserWarning,
            stacklevel=3,
        )


def morgan_fingerprints(
    smiles: Sequence[str], radius: int = 2, n_bits: int = 1024
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Morgan (ECFP-like) bit fingerprints of molecules given as SMILES, through RDKit.

    Each atom's neighbourhood up to ``radius`` bonds is hashed into one of ``n_bits``
    bits; radius 2 with 1,024 bits is ECFP4, the MoleculeNet featurisation of Tox21,
    SIDER, ClinTox and ToxCast. A SMILES that RDKit cannot parse gets a row of zeros and
    ``False`` in the mask; their number is reported in one warning, never an exception.

    Parameters
    ----------
    smiles : sequence of str
        ``n_molecules`` SMILES strings.
    radius : int, default=2
        Neighbourhood radius in bonds (ECFP diameter = 2 × radius).
    n_bits : int, default=1024
        Length of the bit vector.

    Returns
    -------
    X : ndarray of uint8 of shape (n_molecules, n_bits)
        0/1 fingerprints (zeros where parsing failed).
    ok : ndarray of bool of shape (n_molecules,)
        ``True`` where the SMILES was parsed.

    Raises
    ------
    ImportError
        If RDKit is not installed (``pip install polytask[chem]``).
    TypeError
        If ``smiles`` is not a sequence of str.
    ValueError
        If ``radius`` < 0 or ``n_bits`` < 1.

    Warns
    -----
    UserWarning
        Naming how many SMILES could not be parsed.

    References
    ----------
    Rogers, D. & Hahn, M. (2010). Extended-connectivity fingerprints. Journal of
    Chemical Information and Modeling 50(5), 742-754.

    Examples
    --------
    >>> X, ok = morgan_fingerprints(["CCO", "c1ccccc1O"])
    >>> X.shape, X.dtype.name, ok.tolist()
    ((2, 1024), 'uint8', [True, True])
    """
    items = _check_smiles(smiles)
    radius = _positive_int(radius, "radius", 0)
    n_bits = _positive_int(n_bits, "n_bits", 1)
    mols = _parse(items)
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    X = np.zeros((len(items), n_bits), dtype=np.uint8)
    ok = np.array([mol is not None for mol in mols], dtype=bool)
    for i, mol in enumerate(mols):
        if mol is not None:
            X[i] = generator.GetFingerprintAsNumPy(mol)
    _warn_failures(int((~ok).sum()), len(items), "their fingerprint rows are zero (see ok)")
    return X, ok


def _check_split_fractions(fractions: Any, *, allow_zero: bool) -> list[float]:
    if isinstance(fractions, str) or not isinstance(fractions, Sequence | np.ndarray):
        raise TypeError(f"fractions must be a sequence of floats, got {type(fractions).__name__}")
    values = list(fractions)
    low = "non-negative" if allow_zero else "positive"
    if len(values) < 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise ValueError(f"fractions must hold at least two numbers, got {fractions!r}")
    floats = [float(v) for v in values]
    if floats[0] <= 0 or any(v < 0 or (v == 0 and not allow_zero) for v in floats):
        raise ValueError(f"fractions must be {low} (the first positive), got {fractions!r}")
    if abs(sum(floats) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {sum(floats):g})")
    return floats


def random_split(
    n: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    random_state: RandomState = None,
) -> tuple[IntArray, ...]:
    """Random partition of ``range(n)`` into parts of the given fractions.

    Part sizes are the fractions of ``n`` rounded so that every part has at least one
    index and the sizes sum to ``n``; each part's indices are sorted. This is the
    "random" split of the MoleculeNet protocol.

    Parameters
    ----------
    n : int
        Number of items (at least ``len(fractions)``).
    fractions : sequence of float, default=(0.8, 0.1, 0.1)
        Positive shares summing to one, e.g. train/validation/test.
    random_state : int, numpy.random.Generator or None
        Seed for a reproducible split.

    Returns
    -------
    tuple of ndarray of int
        One index array per fraction; together a partition of ``range(n)``.

    Raises
    ------
    ValueError
        If a fraction is not positive, they do not sum to one, or ``n`` is smaller than
        the number of parts.
    TypeError
        If ``fractions`` is not a sequence or ``random_state`` has the wrong type.

    Examples
    --------
    >>> train, val, test = random_split(10, (0.6, 0.2, 0.2), random_state=0)
    >>> len(train), len(val), len(test), sorted([*train, *val, *test]) == list(range(10))
    (6, 2, 2, True)
    """
    floats = _check_split_fractions(fractions, allow_zero=False)
    n = _positive_int(n, "n", len(floats))
    return tuple(random_parts(n, floats, as_rng(random_state)))


def murcko_scaffolds(smiles: Sequence[str]) -> list[str | None]:
    """Bemis–Murcko scaffold of each molecule, as a canonical SMILES.

    The scaffold keeps the ring systems and the chains linking them, dropping side
    chains; an acyclic molecule has the empty scaffold ``""``. Stereochemistry is
    ignored. ``None`` marks a SMILES that RDKit cannot parse (counted in one warning).

    Parameters
    ----------
    smiles : sequence of str
        ``n_molecules`` SMILES strings.

    Returns
    -------
    list of str or None
        One scaffold per molecule.

    Raises
    ------
    ImportError
        If RDKit is not installed.
    TypeError
        If ``smiles`` is not a sequence of str.

    References
    ----------
    Bemis, G. W. & Murcko, M. A. (1996). The properties of known drugs. 1. Molecular
    frameworks. Journal of Medicinal Chemistry 39(15), 2887-2893.

    Examples
    --------
    >>> murcko_scaffolds(["c1ccccc1CCO", "CCO"])
    ['c1ccccc1', '']
    """
    items = _check_smiles(smiles)
    mols = _parse(items)
    from rdkit.Chem.Scaffolds import MurckoScaffold

    scaffolds: list[str | None] = [
        None if mol is None else MurckoScaffold.MurckoScaffoldSmiles(mol=mol) for mol in mols
    ]
    n_failed = sum(s is None for s in scaffolds)
    _warn_failures(n_failed, len(items), "each becomes a scaffold group of its own")
    return scaffolds


def scaffold_split(
    smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> tuple[IntArray, ...]:
    """Deterministic scaffold split: molecules sharing a Bemis–Murcko scaffold stay together.

    Molecules are grouped by scaffold (:func:`murcko_scaffolds`; an unparsable SMILES
    is a group of its own). Groups are visited from the largest to the smallest (ties:
    the group whose first molecule comes first), and each whole group goes to the first
    part that can take it without its cumulative size exceeding its cumulative share of
    ``n`` (for train/validation/test: train while it stays within ``0.8 n``, else
    validation while train + validation stay within ``0.9 n``, else test). Common
    scaffolds thus fill the training part and the rare ones end up in validation and
    test, which makes the held-out molecules structurally novel; the procedure follows
    DeepChem's scaffold splitter, the MoleculeNet protocol. Part sizes only approximate
    the fractions, since groups are never cut.

    Parameters
    ----------
    smiles : sequence of str
        ``n_molecules`` SMILES strings.
    fractions : sequence of float, default=(0.8, 0.1, 0.1)
        Non-negative shares summing to one, the first positive.

    Returns
    -------
    tuple of ndarray of int
        Sorted indices of each part, in the order of ``fractions``; together a partition
        of ``range(n_molecules)``. No scaffold appears in two parts.

    Raises
    ------
    ImportError
        If RDKit is not installed.
    TypeError
        If ``smiles`` is not a sequence of str.
    ValueError
        If the fractions are invalid.

    Warns
    -----
    UserWarning
        Naming how many SMILES could not be parsed.

    References
    ----------
    Bemis, G. W. & Murcko, M. A. (1996). The properties of known drugs. 1. Molecular
    frameworks. Journal of Medicinal Chemistry 39(15), 2887-2893.

    Wu, Z. et al. (2018). MoleculeNet: a benchmark for molecular machine learning.
    Chemical Science 9(2), 513-530.

    Examples
    --------
    >>> smiles = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "C1CC1C", "CCO"]
    >>> [p.tolist() for p in scaffold_split(smiles, (0.6, 0.2, 0.2))]
    [[0, 1, 2], [3], [4]]
    """
    floats = _check_split_fractions(fractions, allow_zero=True)
    scaffolds = murcko_scaffolds(smiles)
    groups: dict[tuple[bool, str], list[int]] = {}
    for i, (smi, scaffold) in enumerate(zip(smiles, scaffolds, strict=True)):
        key = (False, scaffold) if scaffold is not None else (True, f"{i}:{smi}")
        groups.setdefault(key, []).append(i)
    ordered = sorted(groups.values(), key=lambda idx: (-len(idx), idx[0]))
    n = len(scaffolds)
    cutoffs = np.cumsum(floats) * n
    parts: list[list[int]] = [[] for _ in floats]
    for group in ordered:
        placed = len(floats) - 1
        total = 0
        for k, cutoff in enumerate(cutoffs[:-1]):
            total += len(parts[k])
            if total + len(group) <= cutoff + 1e-9:
                placed = k
                break
        parts[placed].extend(group)
    return tuple(np.sort(np.asarray(p, dtype=np.intp)) for p in parts)
