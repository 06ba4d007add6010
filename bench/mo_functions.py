"""Multi-objective test functions shared by bench/optuna_mo_reference.py and
benches/multi_objective.rs (which implements the same formulas): ZDT1 and ZDT2 with 10
variables (two objectives), DTLZ2 with 7 variables (three objectives), all minimised,
with the reference points the hypervolumes are measured against."""
import math

def zdt1(x):
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]

def zdt2(x):
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - (x[0] / g) ** 2)]

def dtlz2(x, m=3):
    g = sum((xi - 0.5) ** 2 for xi in x[m - 1:])
    f = []
    for i in range(m):
        v = 1 + g
        for xj in x[: m - 1 - i]:
            v *= math.cos(xj * math.pi / 2)
        if i > 0:
            v *= math.sin(x[m - 1 - i] * math.pi / 2)
        f.append(v)
    return f

FUNCTIONS = {
    "zdt1": (zdt1, 10, [1.1, 11.0]),
    "zdt2": (zdt2, 10, [1.1, 11.0]),
    "dtlz2": (dtlz2, 7, [2.5, 2.5, 2.5]),
}
