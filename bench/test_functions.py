"""Test functions for comparing popsweep's samplers with Optuna's (minimisation).

Each entry: name -> (space in popsweep's `parameters` syntax, objective(params) -> float,
optimum value). The same definitions are mirrored in Rust in `benches/sampler_quality.rs`
(popsweep's side of the comparison) — keep the two in step.
"""
import math

BRANIN = {
    "x1": {"distribution": "uniform", "min": -5.0, "max": 10.0},
    "x2": {"distribution": "uniform", "min": 0.0, "max": 15.0},
}


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


HARTMANN6 = {f"x{i}": {"distribution": "uniform", "min": 0.0, "max": 1.0} for i in range(6)}
_H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_H_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def _hartmann(p, a, centres):
    x = [p[f"x{i}"] for i in range(len(a[0]))]
    total = 0.0
    for i in range(4):
        inner = sum(a[i][j] * (x[j] - centres[i][j] * 1e-4) ** 2 for j in range(len(x)))
        total += _H_ALPHA[i] * math.exp(-inner)
    return -total


def hartmann6(p):
    return _hartmann(p, _H_A, _H_P)


ROSENBROCK10 = {f"x{i}": {"distribution": "uniform", "min": -5.0, "max": 10.0} for i in range(10)}


def rosenbrock10(p):
    x = [p[f"x{i}"] for i in range(10)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(9))


LEVY10 = {f"x{i}": {"distribution": "uniform", "min": -10.0, "max": 10.0} for i in range(10)}


def levy10(p):
    w = [1 + (p[f"x{i}"] - 1) / 4 for i in range(10)]
    term = math.sin(math.pi * w[0]) ** 2
    for i in range(9):
        term += (w[i] - 1) ** 2 * (1 + 10 * math.sin(math.pi * w[i] + 1) ** 2)
    term += (w[9] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[9]) ** 2)
    return term


MIXED = {
    "kind": {"values": ["sphere", "abs"]},
    "scale": {"distribution": "float", "min": 0.1, "max": 10.0, "log": True, "condition": {"kind": "sphere"}},
    "x1": {"distribution": "uniform", "min": -5.0, "max": 5.0},
    "x2": {"distribution": "uniform", "min": -5.0, "max": 5.0},
    "cat": {"values": ["a", "b", "c", "d"]},
    "n": {"distribution": "int_uniform", "min": 1, "max": 10},
}
_OFFSET = {"a": 1.0, "b": 0.0, "c": 0.5, "d": 2.0}


def mixed(p):
    d2 = (p["x1"] - 1) ** 2 + (p["x2"] + 2) ** 2
    if p["kind"] == "sphere":
        s = p["scale"]
        base = s * d2 + 0.1 * math.log(s) ** 2
    else:
        base = abs(p["x1"] - 1) + abs(p["x2"] + 2) + 0.5
    return base + _OFFSET[p["cat"]] + 0.05 * (p["n"] - 4) ** 2


FUNCTIONS = {
    "branin": (BRANIN, branin, 0.397887357729738),
    "hartmann6": (HARTMANN6, hartmann6, -3.322368011391339),
    "rosenbrock10": (ROSENBROCK10, rosenbrock10, 0.0),
    "levy10": (LEVY10, levy10, 0.0),
    "mixed": (MIXED, mixed, 0.0),
}


# Held out: functions no popsweep sampler setting was chosen on. A change made to win on
# the five above must not lose here (benches/sampler_quality.rs `--functions held-out`).
ACKLEY5 = {f"x{i}": {"distribution": "uniform", "min": -32.768, "max": 32.768} for i in range(5)}


def ackley5(p):
    x = [p[f"x{i}"] for i in range(5)]
    n = len(x)
    square = math.sqrt(sum(v * v for v in x) / n)
    cosine = sum(math.cos(2 * math.pi * v) for v in x) / n
    return -20 * math.exp(-0.2 * square) - math.exp(cosine) + 20 + math.e


STYBLINSKI8 = {f"x{i}": {"distribution": "uniform", "min": -5.0, "max": 5.0} for i in range(8)}


def styblinski8(p):
    return 0.5 * sum(v**4 - 16 * v**2 + 5 * v for v in (p[f"x{i}"] for i in range(8)))


HARTMANN3 = {f"x{i}": {"distribution": "uniform", "min": 0.0, "max": 1.0} for i in range(3)}
_H3_A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
_H3_P = [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]


def hartmann3(p):
    return _hartmann(p, _H3_A, _H3_P)


MICHALEWICZ5 = {f"x{i}": {"distribution": "uniform", "min": 0.0, "max": math.pi} for i in range(5)}


def michalewicz5(p):
    return -sum(
        math.sin(p[f"x{i}"]) * math.sin((i + 1) * p[f"x{i}"] ** 2 / math.pi) ** 20 for i in range(5)
    )


# A training-like space: an optimizer with a conditional momentum, a log-scale learning
# rate whose best value depends on the optimizer, an integer depth, an activation.
TRAINING = {
    "optimizer": {"values": ["sgd", "adam"]},
    "momentum": {"distribution": "uniform", "min": 0.0, "max": 0.99, "condition": {"optimizer": "sgd"}},
    "lr": {"distribution": "float", "min": 1e-5, "max": 1.0, "log": True},
    "depth": {"distribution": "int_uniform", "min": 1, "max": 6},
    "activation": {"values": ["relu", "tanh", "gelu"]},
}
_ACTIVATION = {"relu": 0.0, "tanh": 0.3, "gelu": 0.1}


def training(p):
    if p["optimizer"] == "sgd":
        base = (math.log10(p["lr"]) + 1) ** 2 + 2 * (p["momentum"] - 0.9) ** 2 + 0.05
    else:
        base = (math.log10(p["lr"]) + 3) ** 2
    return base + 0.1 * (p["depth"] - 3) ** 2 + _ACTIVATION[p["activation"]]


HELD_OUT = {
    "ackley5": (ACKLEY5, ackley5, 0.0),
    "styblinski8": (STYBLINSKI8, styblinski8, -313.3293256301713),
    "hartmann3": (HARTMANN3, hartmann3, -3.86278214782076),
    "michalewicz5": (MICHALEWICZ5, michalewicz5, -4.687658179),
    "training": (TRAINING, training, 0.0),
}
