"""What ``tests/test_assignments.py`` grades for ``metrics``: known slips (and exactly the tests each must
fail), correct variants (full marks), and answers that call the kit's finished scores.

Edits apply to the solution's answer cells (markers removed); see :mod:`autograder.checks.assignment`.
Each answer cell has at most five slips and copies, so the harness packs them into five submissions
(one slip per cell in each), and the variants into two more.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

IS, MS, MMD, SW = "metrics_inception_score", "metrics_mode_score", "metrics_mmd_rbf", "metrics_sliced_wasserstein"
T_IS, T_ZEROS = "test_inception_score", "test_inception_score_zeros"
T_MS, T_MMD, T_SW = {"test_mode_score"}, {"test_mmd_rbf"}, {"test_sliced_wasserstein"}
SOLUTION_FIGURES = 5  # the six sample sets, the metric bars, the diversity sweep, sample size, nearest neighbours

_KL = "(torch.xlogy(part, part) - torch.xlogy(part, p_y)).sum(dim=1)"
_SORT_X, _SORT_Y = "torch.sort(x @ units.T, dim=0).values", "torch.sort(y @ units.T, dim=0).values"
_TERMS = ("term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))",
          "term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))")

SLIPS = [
    # Inception Score
    slip("IS: KL(p(y) || p(y|x)), the wrong way round", edit(IS, _KL, "(torch.xlogy(p_y, p_y) - torch.xlogy(p_y, part)).sum(dim=1)"),
         fails={T_IS, T_ZEROS},
         why="with one-hot rows p(y|x) has zeros where p(y) does not, so this KL is infinite: the zeros test fails too"),
    slip("IS: log p(y) as the mean of log p(y|x) (mean of the log, not log of the mean)",
         edit(IS, "torch.xlogy(part, p_y)", "part * torch.log(part).mean(dim=0, keepdim=True)"), fails={T_IS, T_ZEROS},
         why="log 0 = -inf makes the zero cases nan"),
    slip("IS: the exp is forgotten", edit(IS, "torch.exp(kl.mean())", "kl.mean()"), fails={T_IS}, message="log IS",
         why="finite at the zeros, and the zeros test checks exact values only for a formula that is right elsewhere"),
    slip("IS: p * log(p / q) gives nan at p = 0", edit(IS, _KL, "(part * torch.log(part / p_y)).sum(dim=1)"), fails={T_ZEROS},
         message="0 * log 0", why="right wherever every probability is positive"),
    # Mode Score
    slip("MS: the prior term left out", edit(MS, "torch.exp(kl_cond - kl_prior)", "torch.exp(kl_cond)"), fails=T_MS,
         message="Inception Score"),
    slip("MS: p*(y) in the first KL (the form that equals IS)", edit(MS, "torch.xlogy(part, p_y)).sum(dim=1).mean()",
                                                                     "torch.xlogy(part, p_star)).sum(dim=1).mean()"),
         fails=T_MS, message="cancel"),
    slip("MS: the prior term added", edit(MS, "torch.exp(kl_cond - kl_prior)", "torch.exp(kl_cond + kl_prior)"), fails=T_MS,
         message="added instead of subtracted"),
    slip("MS: KL(p*(y) || p(y))", edit(MS, "(torch.xlogy(p_y, p_y) - torch.xlogy(p_y, p_star)).sum()",
                                       "(torch.xlogy(p_star, p_star) - torch.xlogy(p_star, p_y)).sum()"), fails=T_MS,
         message="wrong way round"),
    # MMD
    slip("MMD: the biased estimate (diagonal included)", edit(MMD, _TERMS[0], "term_xx = k_xx.mean()"),
         edit(MMD, _TERMS[1], "term_yy = k_yy.mean()"), fails=T_MMD, message="biased"),
    slip("MMD: the bandwidth used as a variance", edit(MMD, "(2 * bandwidth ** 2)", "(2 * bandwidth)"), fails=T_MMD,
         message="variance"),
    slip("MMD: exp(-d^2 / bandwidth^2)", edit(MMD, "(2 * bandwidth ** 2)", "(bandwidth ** 2)"), fails=T_MMD, message="the 2 is missing"),
    slip("MMD: cross term without its 2", edit(MMD, "- 2 * k_xy.mean()", "- k_xy.mean()"), fails=T_MMD, message="cross term"),
    slip("MMD: distances not squared", edit(MMD, "torch.exp(-sq.clamp_min(0) /", "torch.exp(-sq.clamp_min(0).sqrt() /"),
         fails=T_MMD, message="not squared"),
    # sliced Wasserstein
    slip("SW: projections not sorted", edit(SW, _SORT_X, "x @ units.T"), edit(SW, _SORT_Y, "y @ units.T"), fails=T_SW,
         message="not sorted"),
    slip("SW: directions not normalised", edit(SW, "directions / directions.norm(dim=1, keepdim=True)", "directions"), fails=T_SW,
         message="not normalised"),
    slip("SW: squared differences", edit(SW, "(proj_x - proj_y).abs().mean()", "((proj_x - proj_y) ** 2).mean()"), fails=T_SW,
         message="squared"),
    slip("SW: normalised along the wrong axis", edit(SW, "directions.norm(dim=1, keepdim=True)", "directions.norm(dim=0, keepdim=True)"),
         fails=T_SW),
]
LIBRARY_COPIES = [
    library_copy("IS: from-import alias of the kit's score", edit(IS, "    probs = probs.double()\n",
                 "    from gan_utils.metrics.scores import inception_score as kit_is\n    return kit_is(probs, splits)\n"),
                 fails={T_IS, T_ZEROS}),
    library_copy("MS: module alias", edit(MS, "    probs, ref_probs = probs.double(), ref_probs.double()\n",
                 "    import gan_utils.metrics.scores as S\n    return S.mode_score(probs, ref_probs, splits)\n"), fails=T_MS),
    library_copy("SW: the kit's score on each projection", rewrite(SW, '''import gan_utils.metrics.scores as S


def sliced_wasserstein(x, y, directions):
    units = directions.double() / directions.double().norm(dim=1, keepdim=True)
    return sum(S.sliced_wasserstein((x.double() @ u)[:, None], (y.double() @ u)[:, None], n_projections=1) for u in units) / len(units)
'''), fails=T_SW),
]
VARIANTS = [
    variant("IS: numpy and scipy.stats.entropy", rewrite(IS, '''import numpy as np
from scipy.stats import entropy


def inception_score(probs, splits=10):
    p = probs.detach().cpu().double().numpy()
    scores = [np.exp(entropy(part, np.broadcast_to(part.mean(axis=0), part.shape), axis=1).mean())
              for part in np.array_split(p, splits)]
    return float(np.mean(scores)), float(np.std(scores))
''')),
    variant("IS: entropies with torch.special.entr, chunk, statistics.pstdev and a warning", rewrite(IS, '''import math
import statistics
import warnings


def inception_score(probs, splits=10):
    warnings.warn("inception_score: a harmless warning from a correct answer")
    scores = []
    for part in probs.double().chunk(splits):
        h_marginal = torch.special.entr(part.mean(0)).sum()      # H(p(y))
        h_conditional = torch.special.entr(part).sum(1).mean()   # E_x H(p(y|x))
        scores.append(math.exp(h_marginal - h_conditional))      # log IS = I(x; y)
    return statistics.mean(scores), statistics.pstdev(scores)
''')),
    variant("MS: IS times exp(-KL) with torch.distributions", rewrite(MS, '''from torch.distributions import Categorical, kl_divergence


def mode_score(probs, ref_probs, splits=10):
    prior = Categorical(probs=ref_probs.double().mean(0))
    scores = []
    for part in torch.tensor_split(probs.double(), splits):
        marginal = Categorical(probs=part.mean(0))
        kl = kl_divergence(Categorical(probs=part), Categorical(probs=part.mean(0).expand_as(part))).mean()
        scores.append(torch.exp(kl) * torch.exp(-kl_divergence(marginal, prior)))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.var(unbiased=False).sqrt())
''')),
    variant("MMD: torch.cdist and an off-diagonal mask", rewrite(MMD, '''def mmd_rbf(x, y, bandwidth):
    gamma = 1.0 / (2.0 * bandwidth ** 2)

    def k(a, b):
        return torch.exp(-gamma * torch.cdist(a.double(), b.double()) ** 2)

    def off_diagonal_mean(kk):
        return kk[~torch.eye(len(kk), dtype=torch.bool, device=kk.device)].mean()

    return float(off_diagonal_mean(k(x, x)) + off_diagonal_mean(k(y, y)) - 2 * k(x, y).mean())
''')),
    variant("MMD: numpy and scipy.spatial.distance.cdist", rewrite(MMD, '''import numpy as np
from scipy.spatial.distance import cdist


def mmd_rbf(x, y, bandwidth):
    a, b = x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
    k = lambda u, v: np.exp(-cdist(u, v, "sqeuclidean") / (2 * bandwidth ** 2))
    m, n = len(a), len(b)
    kxx, kyy = k(a, a), k(b, b)
    return float((kxx.sum() - m) / (m * (m - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2 * k(a, b).mean())
''')),
    variant("SW: scipy.stats.wasserstein_distance per direction", rewrite(SW, '''import numpy as np
from scipy.stats import wasserstein_distance


def sliced_wasserstein(x, y, directions):
    u = directions.double() / torch.linalg.vector_norm(directions.double(), dim=1, keepdim=True)
    px, py = (x.double() @ u.T).cpu().numpy(), (y.double() @ u.T).cpu().numpy()
    return float(np.mean([wasserstein_distance(px[:, j], py[:, j]) for j in range(px.shape[1])]))
''')),
    variant("SW: F.normalize, sorted per direction in a loop", rewrite(SW, '''def sliced_wasserstein(x, y, directions):
    units = torch.nn.functional.normalize(directions.double(), dim=1)
    total = 0.0
    for u in units:
        total += (torch.sort(x.double() @ u).values - torch.sort(y.double() @ u).values).abs().mean()
    return float(total / len(units))
''')),
]
