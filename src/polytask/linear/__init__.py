"""Regularised linear multi-task learning: NumPy/SciPy only, scikit-learn API.

The convex half of polytask follows skglm's split into a *datafit* (squared or logistic
loss, shared or per-task designs, missing labels), a *penalty* (L2,1, trace norm,
mean-regularised, dirty, ...) and a *solver* (FISTA, ADMM, an exact linear solve), wired
together by scikit-learn estimators. Internal weights ``W`` are (n_features, n_tasks);
``coef_`` is (n_tasks, n_features). Importing this package never imports torch.
"""

from polytask.linear._admm import ADMM
from polytask.linear._datafit_logistic import LogisticLoss
from polytask.linear._datafits import SquaredLoss
from polytask.linear._design import TaskDesign
from polytask.linear._estimators import MultiTaskClassifier, MultiTaskRegressor
from polytask.linear._graph_exact import GraphRegularizedSolver, solve_graph_regularized
from polytask.linear._hierarchical import HierarchicalBayesRegressor, hierarchical_log_likelihood
from polytask.linear._mean_reg_exact import MeanRegularizedSolver, solve_mean_regularized
from polytask.linear._named_classifiers import (
    ClusteredClassifier,
    DirtyClassifier,
    L21Classifier,
    MeanRegularizedClassifier,
    TraceNormClassifier,
)
from polytask.linear._named_regressors import (
    ClusteredRegressor,
    DirtyRegressor,
    L21Regressor,
    MeanRegularizedRegressor,
    TraceNormRegressor,
)
from polytask.linear._objective import SolverResult, ZeroPenalty, split_penalties
from polytask.linear._path import MultiTaskCV, RegularizationPath, alpha_max, regularization_path
from polytask.linear._penalties import (
    L21,
    Clustered,
    Dirty,
    GraphRegularized,
    L1Linf,
    Lasso,
    MeanRegularized,
    Ridge,
    Robust,
    SparseLowRank,
    TraceNorm,
)
from polytask.linear._prox_newton import ProxNewton
from polytask.linear._screening import gap_safe_screen, restrict_design
from polytask.linear._solver_choice import choose_solver
from polytask.linear._solvers import FISTA
from polytask.linear._working_set import WorkingSet

__all__ = [
    "ADMM",
    "FISTA",
    "L21",
    "Clustered",
    "ClusteredClassifier",
    "ClusteredRegressor",
    "Dirty",
    "DirtyClassifier",
    "DirtyRegressor",
    "GraphRegularized",
    "GraphRegularizedSolver",
    "HierarchicalBayesRegressor",
    "L1Linf",
    "L21Classifier",
    "L21Regressor",
    "Lasso",
    "LogisticLoss",
    "MeanRegularized",
    "MeanRegularizedClassifier",
    "MeanRegularizedRegressor",
    "MeanRegularizedSolver",
    "MultiTaskCV",
    "MultiTaskClassifier",
    "MultiTaskRegressor",
    "ProxNewton",
    "RegularizationPath",
    "Ridge",
    "Robust",
    "SolverResult",
    "SparseLowRank",
    "SquaredLoss",
    "TaskDesign",
    "TraceNorm",
    "TraceNormClassifier",
    "TraceNormRegressor",
    "WorkingSet",
    "ZeroPenalty",
    "alpha_max",
    "choose_solver",
    "gap_safe_screen",
    "hierarchical_log_likelihood",
    "regularization_path",
    "restrict_design",
    "solve_graph_regularized",
    "solve_mean_regularized",
    "split_penalties",
]
