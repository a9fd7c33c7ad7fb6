"""Why the feedback solver needs many iterations at long horizons: the Hessian of the
discrete J at the optimum it finds, in the solver's own metric (docs/general.md, "What
remains").

For each case of target 1 (memory data, n = 100, L = 50, beta = 0.01, data seed 1, from
W*; weight coordinates, 26 nodes, RK4), this runs ``ws.feedback_synthesize`` with its
defaults, then Lanczos (scipy's ``eigsh``, ARPACK) on Hessian-vector products of the
discrete J (forward-over-reverse, ``jax.jvp`` of ``jax.grad``) at the returned nodes, in
the variables the L-BFGS loop uses (P_k = sqrt(w_k) W_k, trapezoid weights w_k, so the
effort ||W||^2 / (2 beta) alone has curvature between 1/(3 beta) and 1/beta). It reports
the largest and the smallest eigenvalues (the smallest as sigma - the largest of
sigma I - H), their ratio, the iterations the solver took and its path (J's relative gap
to its final value and the residual every 50 iterations), and for the slowest modes:
their norm per node (the time profile), the share of the leading term of their
time-space SVD (1: the mode is a(t) M), the share of the four largest singular values
of M at the middle node, and their cosine with W itself per node (the amplitude
direction has |cos| = 1).

Near the optimum a spread spectrum makes any Krylov-type method (L-BFGS included)
converge at about (sqrt(kappa) - 1) / (sqrt(kappa) + 1) per iteration (conjugate
gradients' bound), whatever the grid.

    .venv/bin/python benchmarks/bench_conditioning.py [--quick] [--target2] [--out FILE]

``--deflation K``: instead, for target 1's squared-error case at t1 = 6 only, the K
largest and K smallest eigenpairs, and the iterations of conjugate gradients on the
Hessian at the optimum (a random right-hand side, residual reduced by 1e-6: the linear
tail of a Krylov-type method there) without and with those modes deflated (mapped to
curvature 1/beta by a spectral preconditioner), and with a Galerkin correction on a
subspace the data name instead (W = p(t) Q Y Q^T, Q the targets' span, p constant or up to
quadratic), its Hessian exact or modelled by the Gauss-Newton part (with the warm time of
that model and of one gradient): how many modes a preconditioner would have to capture,
and whether the data can name them cheaply (JSON default
benchmarks/results/conditioning_deflation.json).

``--quick``: n = 32, L = 10 (seconds). ``--target2``: also target 2's correlation case
(random targets, n = L = 256, beta = 0.5, t1 = 1, from W = 0) on the coarse grid alone
(6 nodes), where the solver spent most of its time, by the plain search (``surrogate=
False``; n = L = 32 with --quick). JSON goes
to stdout and to ``--out`` (default benchmarks/results/conditioning.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: E402

import weightsynth as ws  # noqa: E402
from weightsynth.control import feedback_kernel as fk  # noqa: E402
from weightsynth.control import feedback_subspace as fs  # noqa: E402
from weightsynth.control.feedback import _spec_data  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_general import memory_data, random_data  # noqa: E402


def spectrum(p: ws.Problem, W, k_small=6, k_large=4, tol=1e-4):
    """Extreme eigenvalues of J's Hessian in the trapezoid-scaled weight variables at the
    nodes W (T, n, n), with the slowest eigenvectors and the count of products."""
    mv, P0, count = hessian_operator(p, W)
    shape, N = P0.shape, P0.size
    large = np.sort(eigsh(LinearOperator((N, N), matvec=mv, dtype=np.float64), k=k_large,
                          which="LA", tol=tol, return_eigenvectors=False))
    sigma = float(large[-1])
    shifted = LinearOperator((N, N), matvec=lambda v: sigma * v - mv(v), dtype=np.float64)
    vals, vecs = eigsh(shifted, k=k_small, which="LA", tol=tol, maxiter=5000)
    order = np.argsort(sigma - vals)
    small = (sigma - vals)[order]
    return large, small, vecs[:, order].T.reshape(k_small, *shape), P0, count[0]


def _variables(p: ws.Problem, W):
    """(data, spec, sqw, P0): the feedback kernel's problem in weight coordinates on the
    nodes of W (T, n, n), the trapezoid scaling, and the solver's variables there,
    P_k = sqrt(w_k) C_k with C_k = W_k^T."""
    spec, data = _spec_data(p, W.shape[0], 1, "rk4", "weights")
    sqw = fk.trapezoid_sqrt(data, spec)
    return data, spec, sqw, fk.to_var(jnp.asarray(np.swapaxes(W, 1, 2)), None, sqw)


def _cost(data, spec, sqw):
    """J as a function of the solver's variables P."""
    return lambda P: fk.cost(fk.to_coef(P, None, sqw), data, spec)


def hessian_operator(p: ws.Problem, W):
    """(matvec on flat vectors, P0, product counter): J's Hessian in the trapezoid-scaled
    weight variables at the nodes W (T, n, n), by forward-over-reverse."""
    data, spec, sqw, P0 = _variables(p, W)
    grad = jax.grad(_cost(data, spec, sqw))
    hvp = jax.jit(lambda v: jax.jvp(grad, (P0,), (v,))[1])
    shape, count = P0.shape, [0]

    def mv(v):
        count[0] += 1
        return np.asarray(hvp(jnp.asarray(v.reshape(shape)))).ravel()

    return mv, np.asarray(P0), count


def pcg_iterations(mv, b, prec, rtol=1e-6, cap=2000):
    """Iterations of preconditioned conjugate gradients on mv(x) = b until the residual is
    below rtol |b| (cap if never)."""
    x, r = np.zeros_like(b), b.copy()
    z = prec(r)
    d, b0 = z.copy(), np.linalg.norm(b)
    for i in range(1, cap + 1):
        Ad = mv(d)
        a = (r @ z) / (d @ Ad)
        x += a * d
        r_new = r - a * Ad
        if np.linalg.norm(r_new) < rtol * b0:
            return i
        z_new = prec(r_new)
        d = z_new + (r_new @ z_new) / (r @ z) * d
        r, z = r_new, z_new
    return cap


def _time_profiles(w, count: int):
    """(T, count): the first ``count`` Legendre polynomials on the T nodes, weighted by
    sqrt(w) as the solver's variables are, orthonormalized."""
    u = np.linspace(-1.0, 1.0, len(w))
    B = np.stack([np.sqrt(w) * np.polynomial.legendre.Legendre.basis(j)(u)
                  for j in range(count)], axis=1)
    return np.linalg.qr(B)[0]


def band_structure(V, theta, w) -> dict:
    """Where a band of modes V (columns, in the solver's variables P_k = sqrt(w_k) W_k^T on
    T nodes) lives: their least share within the first 1, 3 and 5 Legendre time profiles
    (weighted by sqrt(w), as the variables are); the dimensions of W's output- and input-side
    spaces that hold 99% of the mass of their 5-profile components; and the share of their
    mass in the span of the distinct targets on each side of W."""
    T, n = len(w), theta.shape[1]
    modes = V.T.reshape(-1, T, n, n)  # (k, T, n, n), each node block C = W^T
    share = {}
    for count in (1, 3, 5):
        Q = _time_profiles(w, count)
        share[count] = round(float(min(np.sum(np.tensordot(Q.T, m, axes=1) ** 2)
                                       / np.sum(m ** 2) for m in modes)), 4)
    comps = np.concatenate([np.tensordot(_time_profiles(w, 5).T, m, axes=1) for m in modes])

    def dims(blocks):
        s = np.linalg.svd(np.concatenate(list(blocks), axis=1), compute_uv=False)
        return int(np.searchsorted(np.cumsum(s ** 2) / np.sum(s ** 2), 0.99)) + 1

    E = fs.targets_basis(theta, None)
    total = float(np.sum(modes ** 2))
    return dict(least_share_in_time_profiles={"1": share[1], "3": share[3], "5": share[5]},
                dims_99pct=dict(output_side=dims(m.T for m in comps),
                                input_side=dims(comps)),
                share_in_targets_span=dict(
                    output_side=round(float(np.sum((modes @ E) ** 2)) / total, 4),
                    input_side=round(float(np.sum((np.swapaxes(modes, 2, 3) @ E) ** 2))
                                     / total, 4)),
                distinct_targets=int(E.shape[1]))


def targets_subspace(mv, shape, theta, w, profiles: int):
    """(apply S^T, apply S, the Hessian restricted to S, products): S = {p(t) Q Y Q^T}, p in
    the first ``profiles`` Legendre time profiles (sqrt(w)-weighted, orthonormal), Q an
    orthonormal basis of the distinct targets' span, in the solver's variables (C = W^T;
    Q Y Q^T and its transpose span the same set). H_S = S^T H S from one product per basis
    vector."""
    q, Q = _time_profiles(w, profiles), fs.targets_basis(theta, None)
    K = Q.shape[1]

    def coeffs(x):
        return np.einsum("kj,kab->jab", q, np.einsum("ia,kij,jb->kab", Q, x.reshape(shape),
                                                      Q)).ravel()

    def expand(c):
        return np.einsum("kj,jab,ia,lb->kil", q, c.reshape(profiles, K, K), Q, Q).ravel()

    m = profiles * K * K
    HS = np.column_stack([coeffs(mv(expand(e))) for e in np.eye(m)])
    return coeffs, expand, 0.5 * (HS + HS.T), m


def gauss_newton_on(p: ws.Problem, W, theta):
    """The solver's Gauss-Newton model of the Hessian on the targets' subspace with one
    time profile (``feedback_subspace.subspace_hessian``: I / beta plus J^T (d^2 terminal
    cost / dZ1^2) J, J the outputs' sensitivities from one forward pass with a tangent per
    dimension), here on the full grid in float64, at the nodes W, in the coordinates of
    :func:`targets_subspace` with ``profiles=1``. Returns (H, seconds of the warm build)."""
    data, spec, sqw, P0 = _variables(p, W)
    Q = jnp.asarray(fs.targets_basis(theta, None))
    for _ in range(2):  # the second build is the warm one
        t = time.perf_counter()
        H = np.asarray(fs.subspace_hessian(P0, Q, data, spec, sqw))
        seconds = time.perf_counter() - t
    return H, seconds


def _galerkin(coeffs, expand, H, beta: float):
    """The preconditioner x - S S^T x + S (beta H)^{-1} S^T x: S's part of x to curvature
    1/beta by H (the Hessian on S, or a model of it), the rest as is."""
    Hi = np.linalg.inv(H)

    def prec(x):
        c = coeffs(x)
        return x - expand(c) + expand(Hi @ c) / beta

    return prec


def deflation(k: int, n: int, L: int) -> dict:
    """Target 1's squared-error case at t1 = 6 (data seed 1, from W*): its k largest and k
    smallest eigenpairs at the optimum, and conjugate gradients' iterations with 0, 8 and
    k of each deflated."""
    phi, theta = memory_data(n, L, seed=1)
    beta = 0.01
    p = ws.Problem(phi, theta, "squared_error", beta=beta, t1=6.0)
    t = time.perf_counter()
    r = ws.feedback_synthesize(p, W0="closed_form", max_iter=1500)
    solve_s = time.perf_counter() - t
    mv, P0, count = hessian_operator(p, np.asarray(r.program.W))
    shape, N = P0.shape, P0.size
    w = np.ones(shape[0])
    w[[0, -1]] = 0.5  # the trapezoid weights of the variables, up to the step
    v0 = np.random.default_rng(1).standard_normal(N)  # ARPACK's start: a fixed one
    top, Vt = eigsh(LinearOperator((N, N), matvec=mv, dtype=np.float64), k=k, which="LA",
                    tol=1e-3, v0=v0)
    top_products = count[0]
    sigma = 1.01 * float(top.max())
    shifted = LinearOperator((N, N), matvec=lambda v: sigma * v - mv(v), dtype=np.float64)
    vals, Vb = eigsh(shifted, k=k, which="LA", tol=1e-3, maxiter=20000, v0=v0)
    bottom = sigma - vals
    it, ib = np.argsort(top)[::-1], np.argsort(bottom)
    b = np.random.default_rng(0).standard_normal(N)
    cg = {}
    for kt, kb in ((0, 0), (8, 0), (k, 0), (0, 8), (0, k), (8, 8), (k, k)):
        V = np.concatenate([Vt[:, it[:kt]], Vb[:, ib[:kb]]], axis=1)
        lam = np.concatenate([top[it[:kt]], bottom[ib[:kb]]])

        def prec(x, V=V, lam=lam):  # the deflated modes to curvature 1/beta, the rest as is
            c = V.T @ x
            return x - V @ c + V @ (c / (beta * lam))

        cg[f"top {kt}, bottom {kb}"] = pcg_iterations(mv, b, prec)
    for profiles in (1, 3):  # a subspace the data name instead of computed modes
        coeffs, expand, HS, m = targets_subspace(mv, shape, theta, w, profiles)
        cg[f"targets subspace, {profiles} time profile(s), {m} dimensions"] = (
            pcg_iterations(mv, b, _galerkin(coeffs, expand, HS, beta)))
        if profiles == 1:  # the same with H_S modelled cheaply (gauss_newton_on)
            HG, gn_seconds = gauss_newton_on(p, np.asarray(r.program.W), theta)
            cg[f"targets subspace, 1 time profile, {m} dimensions, Gauss-Newton H_S"] = (
                pcg_iterations(mv, b, _galerkin(coeffs, expand, HG, beta)))
    return dict(n=n, L=L, index="squared_error", beta=beta, t1=6.0, start="W*", data_seed=1,
                iterations=int(r.iterations), J=float(r.J), solve_seconds=round(solve_s, 2),
                largest=np.round(top[it], 1).tolist(),
                smallest=np.round(bottom[ib], 2).tolist(),
                largest_modes=[mode_structure(Vt[:, j].reshape(shape), P0) for j in it[:2]],
                smallest_modes=[mode_structure(Vb[:, j].reshape(shape), P0) for j in ib[:2]],
                largest_band=band_structure(Vt, theta, w),
                smallest_band=band_structure(Vb, theta, w),
                eigen_products=dict(largest=top_products, smallest=count[0] - top_products),
                gauss_newton_build_seconds=round(gn_seconds, 3),
                gradient_seconds=round(_gradient_seconds(p, np.asarray(r.program.W)), 4),
                cg_iterations_1e6=cg)


def _gradient_seconds(p: ws.Problem, W, reps: int = 5) -> float:
    """Warm time of one gradient of J at the nodes W (the solver's pass), for scale."""
    data, spec, sqw, P0 = _variables(p, W)
    g = jax.jit(jax.grad(_cost(data, spec, sqw)))
    g(P0).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        g(P0).block_until_ready()
    return (time.perf_counter() - t) / reps


def _cg_factor(kappa):
    """The per-iteration error factor of conjugate gradients on a spectrum of condition
    kappa, (sqrt(kappa) - 1) / (sqrt(kappa) + 1)."""
    return (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)


def mode_structure(v, P0):
    T = v.shape[0]
    prof = np.linalg.norm(v.reshape(T, -1), axis=1)
    s_tx = np.linalg.svd(v.reshape(T, -1), compute_uv=False)
    s_mid = np.linalg.svd(v[T // 2], compute_uv=False)
    cos = [float(np.vdot(v[k], P0[k]) / (np.linalg.norm(v[k]) * np.linalg.norm(P0[k])
                                          + 1e-300)) for k in range(T)]
    return dict(time_profile=np.round(prof, 3).tolist(),
                separable_share=round(float(s_tx[0] ** 2 / np.sum(s_tx ** 2)), 4),
                rank4_share_mid=round(float(np.sum(s_mid[:4]) / np.sum(s_mid)), 4),
                max_abs_cos_with_W=round(float(np.max(np.abs(cos))), 4))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--target2", action="store_true")
    ap.add_argument("--deflation", type=int, default=0, metavar="K")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    n, L = (32, 10) if a.quick else (100, 50)
    if a.deflation:
        rec = deflation(a.deflation, n, L)
        _write(dict(_environment(), quick=a.quick, records=[rec]),
               a.out or _result_path("conditioning_deflation", a.quick))
        return
    cases = [dict(data=memory_data(n, L, seed=1), index=kind, beta=0.01, t1=t1,
                  start="W*", data_seed=1, W0="closed_form", nodes=26)
             for kind in ("squared_error", "correlation") for t1 in (1.0, 6.0)]
    if a.target2:
        m = 32 if a.quick else 256
        cases.append(dict(data=random_data(m, m), index="correlation", beta=0.5, t1=1.0,
                          start="zero", data_seed=0, W0="zero", nodes=6, surrogate=False))
    records = []
    for case in cases:
        phi, theta = case.pop("data")
        kind, beta, t1 = case["index"], case["beta"], case["t1"]
        p = ws.Problem(phi, theta, kind, beta=beta, t1=t1)
        t = time.perf_counter()
        r = ws.feedback_synthesize(p, W0=case.pop("W0"), max_iter=1500,
                                   nodes=case["nodes"],
                                   coarse="auto" if case["nodes"] == 26 else (),
                                   surrogate=case.get("surrogate", "auto"))
        solve_s = time.perf_counter() - t
        t = time.perf_counter()
        large, small, modes, P0, products = spectrum(p, np.asarray(r.program.W))
        rec = dict(n=phi.shape[1], L=phi.shape[0], **case,
                   converged=bool(r.converged), iterations=int(r.iterations),
                   iterations_per_stage={  # run (0 direct, 1 continuation):t1:nodes
                       f"{k[0]}:{k[1]:g}:{k[2]}": int(v) - 1 for k, v in
                       r.history.groupby(["run", "t1", "nodes"]).iteration.count().items()},
                   J=float(r.J), solve_seconds=round(solve_s, 2),
                   # the path: (iteration, J's relative gap to the end, residual) every 50
                   path=[[int(h.iteration), float(f"{(h.J - r.J) / abs(r.J):.3g}"),
                          float(f"{h.residual:.3g}")]
                         for h in r.history.iloc[::50].itertuples()],
                   effort_curvature=[1 / (3 * beta), 1 / beta],
                   largest=np.round(large, 4).tolist(),
                   smallest=np.round(small, 4).tolist(),
                   condition=round(float(large[-1] / small[0]), 1),
                   cg_factor=round(float(_cg_factor(large[-1] / small[0])), 4),
                   slowest_modes=[mode_structure(v, P0) for v in modes[:2]],
                   hessian_vector_products=products,
                   lanczos_seconds=round(time.perf_counter() - t, 1))
        records.append(rec)
        print(json.dumps(rec), file=sys.stderr)
    _write(dict(_environment(), quick=a.quick, records=records),
           a.out or _result_path("conditioning", a.quick))


def _environment() -> dict:
    return dict(load_average=os.getloadavg(), cpu_count=os.cpu_count(),
                device=jax.devices()[0].device_kind)


def _result_path(name: str, quick: bool) -> str:
    return os.path.join(os.path.dirname(__file__), "results",
                        f"{name}_quick.json" if quick else f"{name}.json")


def _write(doc: dict, out: str) -> None:
    text = json.dumps(doc, indent=1)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    print(text)


if __name__ == "__main__":
    main()
