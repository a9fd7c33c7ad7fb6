import numpy as np

import weightsynth as ws


def test_optimal_cost_smoke(rng):
    theta = np.sign(rng.standard_normal((4, 6)))
    phi = 0.5 * theta
    prog = ws.synthesize(phi, theta, beta=0.5, t1=1.0)
    J = ws.performance_index(prog, phi, theta, beta=0.5, t1=1.0)
    J_star = -np.sum(np.arctanh(phi) * theta)
    assert abs(J - J_star) <= 1e-8 * abs(J_star)
