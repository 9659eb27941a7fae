"""Reference solutions to the exercises of notebook 07, one per checker in
`fedlite.checks_algorithms`.  Written the way a student would: plain numpy.

    from fedlite import checks_algorithms as checks
    checks.scaffold_step(scaffold_step)   # prints "✔ Correct: ..."
"""
import numpy as np


def scaffold_step(y, grad, c_k, c, lr):
    """One SCAFFOLD local step: the gradient corrected by the control variates."""
    return y - lr * (grad - c_k + c)


def control_update(c_k, c, x, y, num_steps, lr):
    """Option II: (x - y) / (num_steps lr) is the mean corrected gradient along the path;
    taking out the correction (- c_k + c) leaves the mean of the participant's own gradients."""
    return c_k - c + (x - y) / (num_steps * lr)


def adam_server_step(theta, delta, m, v, server_lr, beta1, beta2, tau):
    """FedAdam (Reddi et al. 2021, Algorithm 2): moments of the mean weight change delta, no
    bias correction, tau outside the square root."""
    m_new = beta1 * m + (1 - beta1) * delta
    v_new = beta2 * v + (1 - beta2) * delta ** 2
    theta_new = theta + server_lr * m_new / (np.sqrt(v_new) + tau)
    return theta_new, m_new, v_new
