//! Several objectives: dominance (with Optuna's constrained dominance), non-dominated
//! sorting, crowding distance, hypervolume and greedy hypervolume subset selection. Every
//! vector here is in minimisation form (a maximised objective negated by the caller).

/// Whether `a` Pareto-dominates `b`: no worse in every objective, better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        better |= x < y;
    }
    better
}

/// Optuna's constrained dominance (Deb): a feasible point dominates an infeasible one; of
/// two infeasible points the one with the smaller total violation dominates; two feasible
/// points compare by Pareto dominance.
pub fn constrained_dominates(a: (&[f64], f64), b: (&[f64], f64)) -> bool {
    match (a.1 == 0.0, b.1 == 0.0) {
        (true, true) => dominates(a.0, b.0),
        (true, false) => true,
        (false, true) => false,
        (false, false) => a.1 < b.1,
    }
}

/// Non-dominated fronts of `points` (with their violations), best first, each a list of
/// indices in increasing order. O(n² · d), as NSGA-II's fast non-dominated sort.
pub fn fronts(points: &[Vec<f64>], violations: &[f64]) -> Vec<Vec<usize>> {
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominating: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (
                (&points[i][..], violations[i]),
                (&points[j][..], violations[j]),
            );
            if constrained_dominates(a, b) {
                dominating[i].push(j);
                dominated_by[j] += 1;
            } else if constrained_dominates(b, a) {
                dominating[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominating[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        fronts.push(std::mem::replace(&mut current, next));
    }
    fronts
}

/// NSGA-II's crowding distance of each point of one front: per objective, the gap between
/// its neighbours over the objective's range; the extremes are infinite.
pub fn crowding_distances(points: &[&[f64]]) -> Vec<f64> {
    let n = points.len();
    let mut distance = vec![0.0; n];
    if n <= 2 {
        return vec![f64::INFINITY; n];
    }
    let dims = points[0].len();
    let mut order: Vec<usize> = (0..n).collect();
    for column in (0..dims).map(|d| points.iter().map(|p| p[d]).collect::<Vec<f64>>()) {
        order.sort_by(|&a, &b| column[a].total_cmp(&column[b]));
        let (lo, hi) = (column[order[0]], column[order[n - 1]]);
        distance[order[0]] = f64::INFINITY;
        distance[order[n - 1]] = f64::INFINITY;
        let range = hi - lo;
        if range == 0.0 || !range.is_finite() {
            continue;
        }
        for k in 1..n - 1 {
            distance[order[k]] += (column[order[k + 1]] - column[order[k - 1]]) / range;
        }
    }
    distance
}

/// The hypervolume dominated by `points` and bounded by `reference` (minimisation):
/// exact, by slicing along the last objective down to a sweep in two dimensions. Points
/// not strictly better than the reference in every objective add nothing.
pub fn hypervolume(points: &[&[f64]], reference: &[f64]) -> f64 {
    let inside: Vec<&[f64]> = points
        .iter()
        .copied()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    volume(inside, reference)
}

fn volume(mut points: Vec<&[f64]>, reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() {
        return 0.0;
    }
    match d {
        1 => reference[0] - points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min),
        2 => {
            points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            let (mut area, mut best_y) = (0.0, reference[1]);
            for p in points {
                if p[1] < best_y {
                    area += (reference[0] - p[0]) * (best_y - p[1]);
                    best_y = p[1];
                }
            }
            area
        }
        _ => {
            // Slices between consecutive values of the last objective: each is the
            // (d−1)-volume of the points at or below it, times its thickness.
            points.sort_by(|a, b| a[d - 1].total_cmp(&b[d - 1]));
            let mut total = 0.0;
            for k in 0..points.len() {
                let top = points.get(k + 1).map_or(reference[d - 1], |p| p[d - 1]);
                let thickness = top - points[k][d - 1];
                if thickness > 0.0 {
                    let slice: Vec<&[f64]> = points[..=k].iter().map(|p| &p[..d - 1]).collect();
                    total += thickness * volume(slice, &reference[..d - 1]);
                }
            }
            total
        }
    }
}

/// `k` of `points` chosen greedily for the largest hypervolume (Optuna's HSSP for the
/// tie-breaking front), as indices into `points`, in the order chosen.
pub fn select_by_hypervolume(points: &[&[f64]], k: usize, reference: &[f64]) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    let mut chosen_points: Vec<&[f64]> = Vec::with_capacity(k);
    let mut current = 0.0;
    while chosen.len() < k.min(points.len()) {
        let mut best = (usize::MAX, f64::NEG_INFINITY);
        for (i, p) in points.iter().enumerate() {
            if chosen.contains(&i) {
                continue;
            }
            chosen_points.push(p);
            let gain = hypervolume(&chosen_points, reference) - current;
            chosen_points.pop();
            if gain > best.1 {
                best = (i, gain);
            }
        }
        chosen.push(best.0);
        chosen_points.push(points[best.0]);
        current += best.1;
    }
    chosen
}

/// Optuna's reference point for a set of losses: 1.1 × the worst of each objective
/// (0.9 × when it is negative), a tiny positive number where that is 0.
pub fn reference_point(points: &[&[f64]]) -> Vec<f64> {
    let d = points.first().map_or(0, |p| p.len());
    (0..d)
        .map(|k| {
            let worst = points
                .iter()
                .map(|p| p[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let r = (1.1 * worst).max(0.9 * worst);
            if r == 0.0 {
                f64::EPSILON
            } else {
                r
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_rank_by_dominance_and_feasibility() {
        let points = vec![
            vec![1.0, 4.0],
            vec![2.0, 2.0],
            vec![4.0, 1.0],
            vec![3.0, 3.0],
            vec![5.0, 5.0],
            vec![0.0, 0.0],
        ];
        let violations = [0.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        let f = fronts(&points, &violations);
        assert_eq!(f, vec![vec![0, 1, 2], vec![3], vec![4], vec![5]]);
        assert!(constrained_dominates((&[9.0], 1.0), (&[0.0], 2.0)));
    }

    #[test]
    fn hypervolume_is_exact_in_two_and_three_dimensions() {
        let p: Vec<&[f64]> = vec![&[1.0, 3.0], &[2.0, 2.0], &[3.0, 1.0]];
        // Staircase under (4, 4): 3·1 + 2·1 + 1·1.
        assert!((hypervolume(&p, &[4.0, 4.0]) - 6.0).abs() < 1e-12);
        let q: Vec<&[f64]> = vec![&[0.0, 0.0, 0.0]];
        assert!((hypervolume(&q, &[1.0, 2.0, 3.0]) - 6.0).abs() < 1e-12);
        // Two boxes of 1×1×2 and 2×1×1 overlapping in 1×1×1: 2 + 2 − 1.
        let r: Vec<&[f64]> = vec![&[1.0, 1.0, 0.0], &[0.0, 1.0, 1.0]];
        assert!((hypervolume(&r, &[2.0, 2.0, 2.0]) - 3.0).abs() < 1e-12);
        let pick = select_by_hypervolume(&p, 2, &[4.0, 4.0]);
        assert_eq!(pick.len(), 2);
        assert!((hypervolume(&[p[pick[0]], p[pick[1]]], &[4.0, 4.0]) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn crowding_keeps_the_extremes() {
        let p: Vec<&[f64]> = vec![&[0.0, 4.0], &[1.0, 3.0], &[3.0, 1.0], &[4.0, 0.0]];
        let d = crowding_distances(&p);
        assert!(d[0].is_infinite() && d[3].is_infinite());
        assert!((d[1] - (3.0 / 4.0 + 3.0 / 4.0)).abs() < 1e-12);
    }
}
