"""The analyses behind the paper's figures: gradient identities (Eqs. 4–9, Fig. 1), feature clusters (Figs. 2–3),
logits under attack (Fig. 5) and the geometry of f(x) against the class prototypes (Figs. 6–7).

Everything here is a plain function of a model (or of tensors) and returns tensors, numpy arrays or tidy pandas
frames; notebooks 00, 03, 04 and 05 only call these and plot. Conventions:

- A model is a `tempscale.models.Classifier`: `features(x)` is f(x), `prototypes` is W (one row per class),
  `head.bias` is b, and the logits are z = W f(x) + b.
- τ is a training-time quantity. Evaluation quantities (predictions, Fig. 5's logits, the attack) use the raw
  logits, i.e. τ = 1, as the paper does (Sec. V-A).
- "Weight" of a sample means 1 − P_y^τ(x), the factor it carries in the batch sums of Eqs. 7–9.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .inference import batched_features, eval_mode, input_gradient
from .losses import check_tau, closed_form_gradients, softmax_tau, temperature_ce

# --- features and logits ---------------------------------------------------------------------------------------------


def extract(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x), logits) for every row of x, in batches, without gradients, with the model in eval mode.

    The model's modes are restored afterwards. Logits are computed from the same features through the head,
    so `logits == features @ W.T + b` exactly.
    """
    return batched_features(model, x, batch_size)


# --- Eqs. 4–9: closed forms against autograd ----------------------------------------------------------------------


def gradient_identity_check(model_or_problem, x: torch.Tensor | None, y: torch.Tensor, tau: float) -> dict:
    """Compare autograd with the paper's closed-form gradients (Eqs. 4–9) of CE(z/τ, y), z = W f(x) + b.

    `model_or_problem` is a Classifier (then f(x) is computed from `x` by the real encoder and the logits go through
    the real `head`) or a tuple (features, prototypes, bias) with `x` ignored. Autograd differentiates the summed
    loss Σ_n CE(z_n/τ, y_n):
      - w.r.t. f(x_n) gives each sample's ∂L/∂f (Eq. 6; the rows are independent),
      - w.r.t. W gives Σ_n ∂L_n/∂W, the batch sums of Eqs. 7–8,
      - and, per sample, ∂L_n/∂W (Eqs. 4–5) by one backward pass per sample.
    Returns max absolute errors, the largest gradient entry (for scale) and the relative errors, in the model's dtype.
    """
    tau = check_tau(tau)
    if isinstance(model_or_problem, torch.nn.Module):
        model = model_or_problem
        with eval_mode(model), torch.no_grad():
            feats = model.features(x)
        W, b = model.head.weight, model.head.bias

        def head(f, weight):
            return F.linear(f, weight, b)
    else:
        feats, W, b = model_or_problem

        def head(f, weight):
            return f @ weight.T + (b if b is not None else 0)

    feats = feats.detach()
    W = W.detach()
    b = b.detach() if b is not None else None
    f_leaf = feats.clone().requires_grad_(True)
    W_leaf = W.clone().requires_grad_(True)
    loss = temperature_ce(head(f_leaf, W_leaf), y, tau, reduction="sum")
    auto_df, auto_dW_sum = torch.autograd.grad(loss, (f_leaf, W_leaf))
    auto_dW = []
    for n in range(len(y)):
        W_n = W.clone().requires_grad_(True)
        loss_n = temperature_ce(head(feats[n:n + 1], W_n), y[n:n + 1], tau, reduction="sum")
        auto_dW.append(torch.autograd.grad(loss_n, W_n)[0])
    auto_dW = torch.stack(auto_dW)

    closed = closed_form_gradients(feats, W, b, y, tau)
    err = {
        "df": (closed["df"] - auto_df).abs().max().item(),                              # Eq. 6 (Eq. 9 summed)
        "dW_per_sample": (closed["dW"] - auto_dW).abs().max().item(),                   # Eqs. 4–5
        "dW_batch": (closed["dW"].sum(0) - auto_dW_sum).abs().max().item(),             # Eqs. 7–8
    }
    scale = {
        "df": auto_df.abs().max().item(),
        "dW_per_sample": auto_dW.abs().max().item(),
        "dW_batch": auto_dW_sum.abs().max().item(),
    }
    out = {"tau": tau, "n": len(y), "dtype": str(feats.dtype).replace("torch.", "")}
    for k in err:
        out[f"max_abs_err_{k}"] = err[k]
        out[f"max_abs_grad_{k}"] = scale[k]
        out[f"rel_err_{k}"] = err[k] / max(scale[k], torch.finfo(feats.dtype).tiny)
    out["max_abs_err"] = max(err.values())
    out["max_rel_err"] = max(out[f"rel_err_{k}"] for k in err)
    return out


# --- Fig. 1: the encoder's update direction in a 2-D toy ---------------------------------------------------------


@dataclass
class ToyDirection:
    """Result of `toy_update_direction`. Arrays are indexed [τ index, class] (or [τ index] / [τ index, 2]).

    - probs: P_j^τ(x); negative_share: P_j / Σ_{k≠i} P_k for negatives (NaN at the true class): how the push away
      from the negatives is split among them.
    - coefficients: the weight of each prototype in −∂L/∂f (Eq. 6): (1/τ)(1 − P_i) for the true class (pull),
      −(1/τ) P_j for the negatives (push).
    - direction: −∂L/∂f (the encoder's descent direction for f(x)); tau_scaled_direction = τ · direction, the same
      direction with Eq. 6's 1/τ step-size factor removed.
    - negative_entropy: entropy of negative_share divided by log(M − 1): 1 = the push is split equally over all
      negatives, 0 = one negative takes all of it.
    - hard_class: the negative with the largest P_j (the "error-prone" class).
    """

    prototypes: np.ndarray
    f: np.ndarray
    true_class: int
    taus: tuple[float, ...]
    probs: np.ndarray
    coefficients: np.ndarray
    negative_share: np.ndarray
    direction: np.ndarray
    tau_scaled_direction: np.ndarray
    negative_entropy: np.ndarray
    hard_class: np.ndarray

    def index(self, tau: float) -> int:
        for k, t in enumerate(self.taus):
            if math.isclose(t, float(tau)):
                return k
        raise KeyError(f"τ = {tau} was not computed; have {self.taus}")

    def table(self) -> pd.DataFrame:
        """One row per τ: hard class and its share, entropy of the negative shares, angles of the direction."""
        rows = []
        W = self.prototypes
        for k, tau in enumerate(self.taus):
            d = self.direction[k]
            h = int(self.hard_class[k])
            rows.append({
                "tau": tau,
                "P_true": self.probs[k, self.true_class],
                "hard_class": h,
                "hard_share": self.negative_share[k, h],
                "negative_entropy": self.negative_entropy[k],
                "cos(dir, w_true)": _cos(d, W[self.true_class]),
                "cos(dir, -w_hard)": _cos(d, -W[h]),
                "|direction|": float(np.linalg.norm(d)),
            })
        return pd.DataFrame(rows)


def _cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


def fig1_toy() -> tuple[np.ndarray, np.ndarray, int]:
    """The default Fig. 1 geometry: 5 unit-length prototypes on a circle (radius 2), f(x) of class w₃ (index 2) lying
    next to the negative prototype w₁ (index 0). Equal prototype norms make "highest logit" = "nearest prototype"."""
    angles = np.deg2rad([90, 162, 234, 306, 18])
    W = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    f = 1.6 * np.array([np.cos(np.deg2rad(112)), np.sin(np.deg2rad(112))])
    return W, f, 2


def toy_update_direction(prototypes_2d, f_2d, true_class: int,
                         taus: Iterable[float] = (0.5, 1.0, 10.0, 50.0)) -> ToyDirection:
    """The encoder's update direction −∂L/∂f (Eq. 6) for one feature f and prototypes W (no bias), for each τ.

    Works in any dimension; "2d" because Fig. 1 draws it in the plane. Computed with `closed_form_gradients`
    (float64), which the tests check against autograd.
    """
    W = torch.as_tensor(np.asarray(prototypes_2d, dtype=np.float64))
    f = torch.as_tensor(np.asarray(f_2d, dtype=np.float64)).reshape(1, -1)
    M = W.shape[0]
    if not 0 <= true_class < M:
        raise ValueError(f"true_class must be in [0, {M}), got {true_class}")
    if M < 3:
        raise ValueError("need at least 3 classes (2 negatives) to compare how the push is split")
    taus = tuple(check_tau(float(t)) for t in taus)
    y = torch.tensor([true_class])
    probs, coeffs, shares, dirs, ents, hards = [], [], [], [], [], []
    neg = [j for j in range(M) if j != true_class]
    for tau in taus:
        g = closed_form_gradients(f, W, None, y, tau)
        p = g["probs"][0].numpy()
        coeff = -(p - np.eye(M)[true_class]) / tau           # weight of w_j in −∂L/∂f
        share = np.full(M, np.nan)
        share[neg] = p[neg] / p[neg].sum()
        ent = -np.sum(share[neg] * np.log(np.clip(share[neg], 1e-300, None))) / math.log(len(neg))
        probs.append(p)
        coeffs.append(coeff)
        shares.append(share)
        dirs.append(-g["df"][0].numpy())
        ents.append(ent)
        hards.append(neg[int(np.argmax(p[neg]))])
    dirs = np.stack(dirs)
    return ToyDirection(
        prototypes=W.numpy(), f=f[0].numpy(), true_class=true_class, taus=taus, probs=np.stack(probs),
        coefficients=np.stack(coeffs), negative_share=np.stack(shares), direction=dirs,
        tau_scaled_direction=dirs * np.asarray(taus)[:, None], negative_entropy=np.asarray(ents),
        hard_class=np.asarray(hards))


# --- Eqs. 7–9: per-sample weights in a batch ----------------------------------------------------------------------


def sample_weights_from_logits(logits: torch.Tensor, y: torch.Tensor, taus: Iterable[float]) -> pd.DataFrame:
    """Tidy frame, one row per (τ, sample): weight = 1 − P_y^τ(x), its share of the batch total, correctness."""
    logits = torch.as_tensor(logits).detach()
    y = torch.as_tensor(y)
    correct = (logits.argmax(1) == y).numpy()
    frames = []
    for tau in taus:
        w = 1 - softmax_tau(logits.double(), tau).gather(1, y[:, None]).squeeze(1)
        w = w.numpy()
        total = w.sum()
        frames.append(pd.DataFrame({
            "tau": float(tau), "sample": np.arange(len(w)), "label": y.numpy(), "correct": correct,
            "weight": w, "share": w / total if total > 0 else np.full(len(w), np.nan)}))
    return pd.concat(frames, ignore_index=True)


def sample_weights_vs_tau(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, taus: Iterable[float],
                          batch_size: int = 256) -> pd.DataFrame:
    """The per-sample weights 1 − P_y^τ(x) of Eqs. 7–9 for the model's logits on (x, y), for each τ.

    The logits are the same for every τ (one model); only the softmax temperature changes. See
    `sample_weight_summary` for one spread number per τ.
    """
    _, logits = extract(model, x, batch_size)
    return sample_weights_from_logits(logits, y, taus)


def sample_weight_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per τ: mean and std of the weights, the share carried by misclassified samples, and the effective
    fraction of the batch ESS/N = (Σw)² / (N Σw²) ∈ [1/N, 1] (1 = every sample weighs the same; 1/N = one sample
    carries the whole update)."""
    rows = []
    for tau, d in table.groupby("tau", sort=True):
        w = d["weight"].to_numpy()
        n = len(w)
        sq = float(np.sum(w ** 2))
        rows.append({
            "tau": tau, "n": n, "mean_weight": w.mean(), "std_weight": w.std(),
            "share_misclassified": float(d.loc[~d["correct"], "weight"].sum() / w.sum()) if w.sum() > 0 else np.nan,
            "ess_fraction": float(w.sum() ** 2 / (n * sq)) if sq > 0 else np.nan,
        })
    return pd.DataFrame(rows)


# --- Figs. 2–3: t-SNE and cluster quality ------------------------------------------------------------------------


def tsne_embedding(features, seed: int = 0, perplexity: float = 30.0, n_threads: int | None = 1) -> np.ndarray:
    """2-D t-SNE of the features (sklearn, PCA initialisation, fixed seed; perplexity capped at (n − 1)/3).

    BLAS/OpenMP threads are limited to `n_threads` (None: no limit) while it runs: on a small shared CPU the
    default thread pools oversubscribe and slow t-SNE several-fold.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    X = np.asarray(torch.as_tensor(features).detach().double().numpy())
    perp = min(perplexity, max(2.0, (len(X) - 1) / 3))
    tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perp, learning_rate="auto")
    with threadpool_limits(n_threads):
        return tsne.fit_transform(X)


def cluster_scores(features, labels) -> dict:
    """How well the true classes cluster in the (high-dimensional) feature space, not in the t-SNE plane:

    - silhouette_cosine: mean silhouette with cosine distance (the geometry the linear head reads: logits are
      dot products with the prototypes); in [−1, 1], higher = tighter, better separated classes;
    - silhouette_euclidean: the same with Euclidean distance;
    - davies_bouldin: Davies–Bouldin index (Euclidean); ≥ 0, LOWER is better.
    All three are invariant to a global rescaling of the features, so models whose features differ in scale compare.
    """
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    X = np.asarray(torch.as_tensor(features).detach().double().numpy())
    lab = np.asarray(torch.as_tensor(labels).numpy())
    if len(np.unique(lab)) < 2:
        raise ValueError("cluster scores need at least two classes")
    return {
        "silhouette_cosine": float(silhouette_score(X, lab, metric="cosine")),
        "silhouette_euclidean": float(silhouette_score(X, lab, metric="euclidean")),
        "davies_bouldin": float(davies_bouldin_score(X, lab)),
        "n": len(lab),
    }


# --- Figs. 6–7: f(x) against the class prototypes ------------------------------------------------------------------


def minmax(values: np.ndarray) -> np.ndarray:
    """Map all values linearly onto [0, 1] (one min and one max over the whole array)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = values.min(), values.max()
    return np.zeros_like(values) if hi == lo else (values - lo) / (hi - lo)


def variance_over_negatives(values: np.ndarray, labels) -> np.ndarray:
    """Per row n, the population variance (ddof 0) of values[n, j] over the negative classes j ≠ labels[n]."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    mask = np.ones_like(values, dtype=bool)
    mask[np.arange(len(values)), labels] = False
    neg = values[mask].reshape(len(values), values.shape[1] - 1)
    return neg.var(axis=1)


@dataclass
class PrototypeGeometry:
    """f(x) against every prototype w_j, for N samples and M classes (Figs. 6–7).

    distance / cosine: (N, M) raw Euclidean distance ‖f(x) − w_j‖ and cosine similarity cos(f(x), w_j).
    distance_norm / cosine_norm: the same min-max normalised PER MODEL: one min and one max over all N × M values of
    this model, mapped to [0, 1] (the paper: "we map the value of different models into the same range").
    var_distance / var_cosine: (N,) variance over the M − 1 negative prototypes (true class excluded) of the
    NORMALISED values, population variance (ddof 0); the raw-value variances are kept as var_*_raw.
    """

    distance: np.ndarray
    cosine: np.ndarray
    distance_norm: np.ndarray
    cosine_norm: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    var_distance: np.ndarray
    var_cosine: np.ndarray
    var_distance_raw: np.ndarray
    var_cosine_raw: np.ndarray

    def table(self) -> pd.DataFrame:
        """One row per sample."""
        return pd.DataFrame({
            "sample": np.arange(len(self.labels)), "label": self.labels, "pred": self.preds,
            "correct": self.preds == self.labels, "var_distance": self.var_distance, "var_cosine": self.var_cosine,
            "var_distance_raw": self.var_distance_raw, "var_cosine_raw": self.var_cosine_raw,
            "cv_distance": self.cv_distance()})

    def negatives(self, kind: str = "distance") -> np.ndarray:
        """(N, M − 1) raw values ("distance" or "cosine") to the negative prototypes only, in class order."""
        values = {"distance": self.distance, "cosine": self.cosine}[kind]
        mask = np.ones_like(values, dtype=bool)
        mask[np.arange(len(values)), self.labels] = False
        return values[mask].reshape(len(values), values.shape[1] - 1)

    def cv_distance(self) -> np.ndarray:
        """(N,) coefficient of variation (std / mean) of the distances to the negative prototypes: a per-sample,
        scale-free alternative to the per-model min-max normalisation, to check a trend does not hinge on it."""
        neg = self.negatives("distance")
        return neg.std(axis=1) / neg.mean(axis=1)

    def sample(self, n: int) -> dict:
        """Fig. 6's data for sample n: raw distances and cosines to every prototype, and its label."""
        return {"distance": self.distance[n], "cosine": self.cosine[n], "label": int(self.labels[n])}


def geometry_from_features(features, prototypes, labels, logits=None) -> PrototypeGeometry:
    """`prototype_geometry` on given tensors (features (N, D), prototypes (M, D), labels (N,))."""
    Fx = torch.as_tensor(features).detach().double()
    W = torch.as_tensor(prototypes).detach().double()
    lab = np.asarray(torch.as_tensor(labels).numpy())
    dist = torch.cdist(Fx, W).numpy()
    cos = (F.normalize(Fx, dim=1) @ F.normalize(W, dim=1).T).numpy()
    preds = (np.asarray(torch.as_tensor(logits).argmax(1).numpy()) if logits is not None
             else (Fx @ W.T).argmax(1).numpy())
    dn, cn = minmax(dist), minmax(cos)
    return PrototypeGeometry(
        distance=dist, cosine=cos, distance_norm=dn, cosine_norm=cn, labels=lab, preds=preds,
        var_distance=variance_over_negatives(dn, lab), var_cosine=variance_over_negatives(cn, lab),
        var_distance_raw=variance_over_negatives(dist, lab), var_cosine_raw=variance_over_negatives(cos, lab))


def prototype_geometry(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                       batch_size: int = 256) -> PrototypeGeometry:
    """Euclidean distance and cosine similarity of f(x) to every prototype, and their variance over the negative
    prototypes per sample after per-model min-max normalisation (Figs. 6–7; see `PrototypeGeometry`)."""
    feats, logits = extract(model, x, batch_size)
    return geometry_from_features(feats, model.prototypes, y, logits)


# --- Fig. 5: logits before and after an attack --------------------------------------------------------------------


def input_gradient_norm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per sample, the L1 norm of ∂CE(z, y)/∂x at τ = 1 (what PGD follows). Exactly 0 means the softmax saturated in
    float32 (P_y rounds to 1): the attack gets no signal there, which looks like robustness but is gradient masking."""
    grad, _ = input_gradient(model, x, y, batch_size=None)  # summed CE: each row is its own example's gradient
    return grad.flatten(1).abs().sum(1).numpy()


def logits_before_after(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                        class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Fig. 5 as a tidy frame: one row per (sample, class) with the raw (τ = 1) logit on the clean and on the
    adversarial input, plus per-sample columns repeated on each row:

    label, pred_clean, pred_adv, p_true_clean (softmax at τ = 1), linf (‖x_adv − x‖∞), grad_l1 (`input_gradient_norm`
    at the clean input; 0 ⇒ saturated softmax, see there). `summarise_logits` gives one row per sample.
    """
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv differ in shape: {tuple(x.shape)} vs {tuple(x_adv.shape)}")
    _, z = extract(model, x)
    _, z_adv = extract(model, x_adv)
    p_true = torch.softmax(z.double(), 1).gather(1, y[:, None]).squeeze(1).numpy()
    grad = input_gradient_norm(model, x, y)
    linf = (x_adv - x).flatten(1).abs().max(1).values.numpy()
    N, M = z.shape
    frame = pd.DataFrame({
        "sample": np.repeat(np.arange(N), M), "class": np.tile(np.arange(M), N),
        "logit_clean": z.numpy().ravel(), "logit_adv": z_adv.numpy().ravel(),
        "label": np.repeat(y.numpy(), M), "pred_clean": np.repeat(z.argmax(1).numpy(), M),
        "pred_adv": np.repeat(z_adv.argmax(1).numpy(), M), "p_true_clean": np.repeat(p_true, M),
        "linf": np.repeat(linf, M), "grad_l1": np.repeat(grad, M)})
    frame["logit_change"] = frame["logit_adv"] - frame["logit_clean"]
    if class_names is not None:
        frame["class_name"] = [class_names[c] for c in frame["class"]]
    return frame


def summarise_logits(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per sample (and per τ if the frame has a "tau" column): predictions before/after, the change of the
    true-class logit, the largest rise among the other classes and which class it was."""
    keys = ["tau", "sample"] if "tau" in frame else ["sample"]
    rows = []
    for key, d in frame.groupby(keys, sort=True):
        first = d.iloc[0]
        true = d[d["class"] == first["label"]].iloc[0]
        others = d[d["class"] != first["label"]]
        top = others.loc[others["logit_change"].idxmax()]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(label=int(first["label"]), pred_clean=int(first["pred_clean"]), pred_adv=int(first["pred_adv"]),
                   flipped=bool(first["pred_adv"] != first["pred_clean"]),
                   true_logit_change=float(true["logit_change"]), max_other_rise=float(top["logit_change"]),
                   max_other_class=int(top["class"]), p_true_clean=float(first["p_true_clean"]),
                   grad_l1=float(first["grad_l1"]), linf=float(first["linf"]))
        rows.append(row)
    return pd.DataFrame(rows)
