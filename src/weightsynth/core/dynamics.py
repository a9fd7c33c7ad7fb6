r"""Vector fields of the network N and of the formal system S, samples as rows.

Notation (derivation.md): Z, G = g(Z), Theta are L x n (one sample per row), W is n x n.

* N, eq. (1), for a batch of B independent copies:   dZ/dt = -Z + g(Z) W^T
* S under the optimal program W* = beta Theta^T G (eq. 7), Gram form (eq. 9):
      dZ/dt = -Z + beta K Theta,   K = G G^T  (L x L)
* the same in reduced coordinates (eq. 10), Z(t) = e^{-(t-t0)} Z0 + A(t) Theta:
      dA/dt = -A + beta K(t),   A(t0) = 0
* queries X (B x n) run through N under W*(t), without forming W (eq. 11):
      dX/dt = -X + beta (g(X) G^T) Theta

None of these forms S's nL x nL block-diagonal matrix, and only ``network_rhs`` and
``optimal_weights`` form an n x n matrix.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .activations import Activation


def network_rhs(
    Z: Float[Array, "B n"], W: Float[Array, "n n"], act: Activation
) -> Float[Array, "B n"]:
    r"""Network N, eq. (1): dz/dt = -z + W g(z), for each row z of Z."""
    return -Z + act.g(Z) @ W.T


def optimal_weights(
    Z: Float[Array, "L n"], Theta: Float[Array, "L n"], beta, act: Activation
) -> Float[Array, "n n"]:
    r"""Optimal program W*(t) = beta sum_r theta_r g(z_r(t))^T = beta Theta^T g(Z) (eq. 7)."""
    return beta * (Theta.T @ act.g(Z))


#: rows per block below which the Gram matrix is one plain GEMM (see :func:`gram`)
GRAM_BLOCK_ROWS = 128


def gram(G: Float[Array, "L n"]) -> Float[Array, "L L"]:
    r"""Gram matrix K = G G^T of the subsystem outputs (eq. 9), using its symmetry.

    G's rows are split into b = min(4, L // 128) blocks; only the b(b+1)/2 blocks
    K_ij = G_i G_j^T with i <= j are multiplied and the rest are their transposes, so the
    cost is (b+1)/(2b) of the plain 2 n L^2 flops (3/4 for b = 2). K comes out exactly
    symmetric. For L < 256 it is the plain product G G^T.
    """
    b = min(4, G.shape[0] // GRAM_BLOCK_ROWS)
    if b < 2:
        return G @ G.T
    parts = jnp.array_split(G, b)
    upper = {(i, j): parts[i] @ parts[j].T for i in range(b) for j in range(i, b)}
    return jnp.block([[upper[i, j] if i <= j else upper[j, i].T for j in range(b)]
                      for i in range(b)])


def reduced_states(t, A: Float[Array, "L L"], Z0, Theta, t0) -> Float[Array, "L n"]:
    r"""Z(t) = e^{-(t - t0)} Z0 + A(t) Theta (eq. 10).

    The decay factor takes Z0's dtype: diffrax keeps times in float64 under x64, and a
    float64 factor would silently promote a float32 program's whole state to float64.
    """
    return jnp.exp(-(t - t0)).astype(Z0.dtype) * Z0 + A @ Theta


def closed_loop_rhs(t, X, Z0: Float[Array, "L n"], Theta: Float[Array, "L n"], beta, t0,
                    act: Activation, coords: str):
    r"""S under its own optimal program W* = beta Theta^T G (eq. 7): the one vector field of S.

    ``coords="direct"``: X = Z (L, n) and dZ/dt = -Z + beta K Theta, K = G G^T (eq. 9).
    ``coords="reduced"``: X = A (L, L), Z = e^{-(t-t0)} Z0 + A Theta and
    dA/dt = -A + beta K (eq. 10). Returns ``(dX/dt, G)``: G = g(Z) is what the queries of
    eq. (11) need, so callers that integrate them alongside need not recompute it.
    """
    Z = reduced_states(t, X, Z0, Theta, t0) if coords == "reduced" else X
    G = act.g(Z)
    if coords != "reduced" and G.shape[0] > G.shape[1]:
        # L > n: the same product associated as G (G^T Theta) (W* of eq. 7, transposed),
        # 4 L n^2 flops instead of 4 L^2 n
        return -X + beta * (G @ (G.T @ Theta)), G
    K = gram(G)
    return -X + beta * (K if coords == "reduced" else K @ Theta), G


def query_rhs(
    X: Float[Array, "B n"], G: Float[Array, "L n"], Theta: Float[Array, "L n"], beta,
    act: Activation, *, dense: bool = False,
) -> Float[Array, "B n"]:
    r"""N under W*(t) for queries X, eq. (11): dX/dt = -X + beta (g(X) G^T) Theta.

    With ``dense=True`` it forms W = beta Theta^T G first (cheaper when L > n and B is large);
    both forms are the same product, associated differently.
    """
    if dense:
        return network_rhs(X, optimal_weights_from_outputs(G, Theta, beta), act)
    return -X + beta * ((act.g(X) @ G.T) @ Theta)


def optimal_weights_from_outputs(G, Theta, beta):
    r"""W = beta Theta^T G, given the outputs G = g(Z) already."""
    return beta * (Theta.T @ G)
