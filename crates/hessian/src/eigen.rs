//! Dense symmetric eigensolvers in f64: the small eigenproblems inside Lanczos and SLQ,
//! and the reference for every test.
//!
//! **Dense symmetric `A` (n × n): cyclic Jacobi.** Sweep over the pairs `(p, q)`,
//! `p < q`, and zero `a_pq` by the plane rotation `J(p, q, θ)` with
//! `θ = (a_qq − a_pp) / (2 a_pq)`, `t = sign(θ) / (|θ| + √(θ² + 1))`,
//! `c = 1/√(t² + 1)`, `s = t c`; then `a_pp ← a_pp − t a_pq`, `a_qq ← a_qq + t a_pq`
//! and `A ← JᵀAJ`, `V ← VJ`. The off-diagonal mass decreases quadratically once small;
//! the result is accurate to a few `ε‖A‖` (Rutishauser's threshold variant:
//! Golub & Van Loan, *Matrix Computations*, 4th ed., §8.5.2–8.5.3; Numerical Recipes,
//! 3rd ed., §11.1).
//!
//! **Symmetric tridiagonal `T` (diagonal α, off-diagonal β): implicit QL with
//! Wilkinson-type shifts.** For the leading unreduced block `l..m`, shift by the
//! eigenvalue of the top 2 × 2 block nearer `α_l`,
//! `σ = α_l − β_l / (g + sign(g)√(g² + 1))`, `g = (α_{l+1} − α_l) / (2β_l)`, and chase
//! the bulge of `T − σI = QL` up with Givens rotations; `β_l → 0` cubically
//! (EISPACK `tql2`; Golub & Van Loan §8.3.5; Numerical Recipes §11.4 `tqli`).
//! Accumulating the rotations on selected rows of the identity gives those rows of
//! the eigenvector matrix in O(n²): the first row gives the Gauss quadrature weights
//! `w_i = s_{1i}²` (Golub & Welsch 1969), the last the Lanczos residuals `β_m |s_{mi}|`.

use crate::{Error, Result};

/// Eigenpairs of a symmetric matrix, eigenvalues ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct SymEigen {
    /// Eigenvalues in ascending order.
    pub values: Vec<f64>,
    /// `vectors[i]` is the unit eigenvector of `values[i]`.
    pub vectors: Vec<Vec<f64>>,
}

/// Eigenvalues of a symmetric tridiagonal matrix, with selected rows of its
/// eigenvector matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct TridiagonalRows {
    /// Eigenvalues in ascending order.
    pub values: Vec<f64>,
    /// `rows[r][i]` = component `row_indices[r]` of the unit eigenvector of `values[i]`.
    pub rows: Vec<Vec<f64>>,
}

/// Jacobi sweeps allowed before giving up (convergence takes 6–10 for n ≤ 1000).
const MAX_SWEEPS: usize = 60;
/// QL iterations allowed per eigenvalue (2–3 are typical).
const MAX_QL_ITERS: usize = 60;

/// Eigen-decomposition of the symmetric part `(A + Aᵀ)/2` of a dense row-major
/// `n × n` matrix, by cyclic Jacobi.
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<SymEigen> {
    if a.len() != n * n {
        return Err(Error::Length {
            what: format!("symmetric_eigen: matrix entries for n = {n}"),
            found: a.len(),
            expected: n * n,
        });
    }
    if let Some(i) = a.iter().position(|x| !x.is_finite()) {
        return Err(Error::Entry {
            what: format!("symmetric_eigen: matrix (row {}, column {})", i / n, i % n),
            index: i,
            value: a[i],
            expected: "a finite number",
        });
    }
    // Upper triangle of the symmetric part; the lower triangle is never read.
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let mut d: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    // Rutishauser: accumulate the diagonal updates of a sweep in `z`, fold into `b`.
    let mut b = d.clone();
    let mut z = vec![0.0; n];

    let mut converged = n <= 1;
    for sweep in 0..MAX_SWEEPS {
        let off: f64 = (0..n)
            .flat_map(|p| ((p + 1)..n).map(move |q| (p, q)))
            .map(|(p, q)| m[p * n + q].abs())
            .sum();
        if off == 0.0 {
            converged = true;
            break;
        }
        // Skip small elements in the first sweeps, where they are not yet worth it.
        let thresh = if sweep < 3 {
            0.2 * off / (n * n) as f64
        } else {
            0.0
        };
        for p in 0..n - 1 {
            for q in p + 1..n {
                let apq = m[p * n + q];
                let g = 100.0 * apq.abs();
                if sweep > 3 && d[p].abs() + g == d[p].abs() && d[q].abs() + g == d[q].abs() {
                    // Below the rounding level of both diagonal entries: drop it.
                    m[p * n + q] = 0.0;
                    continue;
                }
                if apq.abs() <= thresh {
                    continue;
                }
                let h = d[q] - d[p];
                let t = if h.abs() + g == h.abs() {
                    apq / h
                } else {
                    let theta = 0.5 * h / apq;
                    let t = 1.0 / (theta.abs() + (1.0 + theta * theta).sqrt());
                    if theta < 0.0 {
                        -t
                    } else {
                        t
                    }
                };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                let tau = s / (1.0 + c);
                let h = t * apq;
                z[p] -= h;
                z[q] += h;
                d[p] -= h;
                d[q] += h;
                m[p * n + q] = 0.0;
                let rot = |x: &mut [f64], i: usize, j: usize| {
                    let (g, h) = (x[i], x[j]);
                    x[i] = g - s * (h + g * tau);
                    x[j] = h + s * (g - h * tau);
                };
                for j in 0..p {
                    rot(&mut m, j * n + p, j * n + q);
                }
                for j in p + 1..q {
                    rot(&mut m, p * n + j, j * n + q);
                }
                for j in q + 1..n {
                    rot(&mut m, p * n + j, q * n + j);
                }
                for j in 0..n {
                    rot(&mut v, j * n + p, j * n + q);
                }
            }
        }
        for i in 0..n {
            b[i] += z[i];
            d[i] = b[i];
            z[i] = 0.0;
        }
    }
    if !converged {
        return Err(Error::NoConvergence {
            what: "symmetric_eigen: Jacobi sweeps".into(),
            limit: MAX_SWEEPS,
            n,
        });
    }
    let vectors: Vec<Vec<f64>> = (0..n)
        .map(|k| (0..n).map(|i| v[i * n + k]).collect())
        .collect();
    Ok(sorted(d, vectors))
}

/// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `diag`
/// (length n) and off-diagonal `off` (length n − 1), by implicit QL.
pub fn tridiagonal_eigen(diag: &[f64], off: &[f64]) -> Result<SymEigen> {
    let n = diag.len();
    let all: Vec<usize> = (0..n).collect();
    let TridiagonalRows { values, rows } = tridiagonal_eigen_rows(diag, off, &all)?;
    let vectors = (0..n)
        .map(|i| rows.iter().map(|row| row[i]).collect())
        .collect();
    Ok(SymEigen { values, vectors })
}

/// Eigenvalues of the symmetric tridiagonal matrix (`diag`, `off`) and the rows
/// `row_indices` of its eigenvector matrix, in O(n² + n·|rows|) work.
pub fn tridiagonal_eigen_rows(
    diag: &[f64],
    off: &[f64],
    row_indices: &[usize],
) -> Result<TridiagonalRows> {
    let n = diag.len();
    if n == 0 {
        return Ok(TridiagonalRows {
            values: vec![],
            rows: vec![vec![]; row_indices.len()],
        });
    }
    if off.len() != n - 1 {
        return Err(Error::Length {
            what: format!("tridiagonal_eigen: off-diagonal for a diagonal of length {n}"),
            found: off.len(),
            expected: n - 1,
        });
    }
    if let Some(&r) = row_indices.iter().find(|&&r| r >= n) {
        return Err(Error::Invalid {
            what: "tridiagonal_eigen: row index".into(),
            found: r.to_string(),
            expected: format!("an index < the dimension {n}"),
        });
    }
    if diag.iter().chain(off).any(|x| !x.is_finite()) {
        let index = diag
            .iter()
            .chain(off)
            .position(|x| !x.is_finite())
            .unwrap_or(0);
        return Err(Error::Entry {
            what: "tridiagonal_eigen: (diagonal, then off-diagonal)".into(),
            index,
            value: diag
                .iter()
                .chain(off)
                .nth(index)
                .copied()
                .unwrap_or(f64::NAN),
            expected: "a finite number",
        });
    }
    let mut d = diag.to_vec();
    let mut e = off.to_vec();
    e.push(0.0);
    // z[r][c]: row `row_indices[r]` of the accumulated rotations (starts as I).
    let mut z: Vec<Vec<f64>> = row_indices
        .iter()
        .map(|&r| (0..n).map(|c| if c == r { 1.0 } else { 0.0 }).collect())
        .collect();

    for l in 0..n {
        let mut iter = 0;
        loop {
            // Find the first negligible off-diagonal element at or below l.
            let mut m = l;
            while m < n - 1 {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > MAX_QL_ITERS {
                return Err(Error::NoConvergence {
                    what: format!("tridiagonal_eigen: QL for eigenvalue {l}"),
                    limit: MAX_QL_ITERS,
                    n,
                });
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // Underflow: the block splits here; retry from l.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for row in z.iter_mut() {
                    let f = row[i + 1];
                    row[i + 1] = s * row[i] + c * f;
                    row[i] = c * row[i] - s * f;
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    Ok(TridiagonalRows {
        values: order.iter().map(|&i| d[i]).collect(),
        rows: z
            .iter()
            .map(|row| order.iter().map(|&i| row[i]).collect())
            .collect(),
    })
}

/// Sorts eigenpairs by ascending eigenvalue.
fn sorted(values: Vec<f64>, vectors: Vec<Vec<f64>>) -> SymEigen {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    SymEigen {
        values: order.iter().map(|&i| values[i]).collect(),
        vectors: order.iter().map(|&i| vectors[i].clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{spectral_norm, symmetric_with_spectrum};
    use crate::vector::{dot, norm};

    /// ‖A v − λ v‖ for a dense row-major matrix.
    fn residual(a: &[f64], n: usize, lambda: f64, v: &[f64]) -> f64 {
        (0..n)
            .map(|i| (dot(&a[i * n..(i + 1) * n], v) - lambda * v[i]).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn assert_orthonormal(vs: &[Vec<f64>], tol: f64) {
        for i in 0..vs.len() {
            for j in 0..vs.len() {
                let want = if i == j { 1.0 } else { 0.0 };
                let got = dot(&vs[i], &vs[j]);
                assert!((got - want).abs() < tol, "<v{i}, v{j}> = {got}");
            }
        }
    }

    #[test]
    fn jacobi_recovers_a_known_spectrum() {
        // Negative, clustered (1e-6 apart), repeated and zero eigenvalues, n = 120.
        let mut lambda: Vec<f64> = (0..100).map(|i| -5.0 + 0.1 * i as f64).collect();
        lambda.extend([7.0, 7.0 + 1e-6, 7.0 + 2e-6, 3.0, 3.0, 3.0, 0.0, 0.0]);
        lambda.extend((0..12).map(|i| -9.0 + 0.01 * i as f64));
        let n = lambda.len();
        let (a, _) = symmetric_with_spectrum(&lambda, 11);
        let eig = symmetric_eigen(&a.a, n).expect("jacobi converges");
        let mut want = lambda.clone();
        want.sort_by(f64::total_cmp);
        // Backward stable: each eigenvalue moves by at most a few n·ε‖A‖ (Weyl), so
        // 1e-10 relative to ‖A‖ (f64 tolerance of STYLE.md).
        let anorm = spectral_norm(&lambda);
        for (got, want) in eig.values.iter().zip(&want) {
            assert!((got - want).abs() < 1e-10 * anorm, "{got} vs {want}");
        }
        assert_orthonormal(&eig.vectors, 1e-12);
        for (l, v) in eig.values.iter().zip(&eig.vectors) {
            assert!(residual(&a.a, n, *l, v) < 1e-12 * anorm);
        }
    }

    #[test]
    fn jacobi_n300_accuracy() {
        let lambda: Vec<f64> = (0..300)
            .map(|i| ((i * 37) % 300) as f64 / 30.0 - 4.0)
            .collect();
        let (a, _) = symmetric_with_spectrum(&lambda, 5);
        let eig = symmetric_eigen(&a.a, 300).expect("jacobi converges");
        let mut want = lambda.clone();
        want.sort_by(f64::total_cmp);
        let err = eig
            .values
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
        // n·ε‖A‖ = 300 · 2.2e-16 · 6 ≈ 4e-13.
        assert!(err < 1e-12, "max eigenvalue error {err}");
    }

    #[test]
    fn jacobi_small_cases_and_errors() {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3, vectors (1, ∓1)/√2.
        let eig = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2).expect("2x2");
        assert!((eig.values[0] - 1.0).abs() < 1e-15 && (eig.values[1] - 3.0).abs() < 1e-15);
        assert!((eig.vectors[1][0].abs() - 0.5f64.sqrt()).abs() < 1e-15);
        let one = symmetric_eigen(&[4.0], 1).expect("1x1");
        assert_eq!(one.values, vec![4.0]);
        assert_eq!(one.vectors, vec![vec![1.0]]);
        assert!(symmetric_eigen(&[], 0).expect("0x0").values.is_empty());
        // Only the symmetric part counts: [[0, 2], [0, 0]] → [[0, 1], [1, 0]], ±1.
        let eig = symmetric_eigen(&[0.0, 2.0, 0.0, 0.0], 2).expect("asymmetric input");
        assert!((eig.values[0] + 1.0).abs() < 1e-15 && (eig.values[1] - 1.0).abs() < 1e-15);
        assert!(symmetric_eigen(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(symmetric_eigen(&[1.0, f64::NAN, f64::NAN, 1.0], 2).is_err());
    }

    #[test]
    fn tridiagonal_toeplitz_closed_form() {
        // tridiag(b, a, b) of size n has eigenvalues a + 2b cos(kπ/(n+1)), k = 1..n,
        // and eigenvectors v_k(j) = √(2/(n+1)) sin(jkπ/(n+1)) (e.g. Golub & Van Loan,
        // 4th ed., §4.8.3 for a = 2, b = −1).
        let (n, a, b) = (200, 2.0, -1.0);
        let eig = tridiagonal_eigen(&vec![a; n], &vec![b; n - 1]).expect("QL converges");
        let h = std::f64::consts::PI / (n + 1) as f64;
        let mut want: Vec<f64> = (1..=n)
            .map(|k| a + 2.0 * b * (k as f64 * h).cos())
            .collect();
        want.sort_by(f64::total_cmp);
        for (got, want) in eig.values.iter().zip(&want) {
            assert!((got - want).abs() < 1e-13, "{got} vs {want}");
        }
        assert_orthonormal(&eig.vectors, 1e-12);
        // Smallest eigenvalue is k = 1 (b < 0): compare up to sign.
        let v1: Vec<f64> = (1..=n)
            .map(|j| (2.0 / (n + 1) as f64).sqrt() * (j as f64 * h).sin())
            .collect();
        assert!((dot(&v1, &eig.vectors[0]).abs() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn tridiagonal_matches_jacobi_and_rows_match_vectors() {
        // Random tridiagonal with a split (zero off-diagonal) and a tiny coupling.
        let diag: Vec<f64> = (0..40).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
        let mut off: Vec<f64> = (0..39).map(|i| 0.3 + ((i * 5) % 7) as f64 * 0.2).collect();
        off[10] = 0.0;
        off[20] = 1e-200;
        let n = diag.len();
        let mut dense = vec![0.0; n * n];
        for i in 0..n {
            dense[i * n + i] = diag[i];
            if i + 1 < n {
                dense[i * n + i + 1] = off[i];
                dense[(i + 1) * n + i] = off[i];
            }
        }
        let tri = tridiagonal_eigen(&diag, &off).expect("QL converges");
        let jac = symmetric_eigen(&dense, n).expect("Jacobi converges");
        for (t, j) in tri.values.iter().zip(&jac.values) {
            assert!((t - j).abs() < 1e-12, "{t} vs {j}");
        }
        for (l, v) in tri.values.iter().zip(&tri.vectors) {
            assert!(residual(&dense, n, *l, v) < 1e-12);
            assert!((norm(v) - 1.0).abs() < 1e-13);
        }
        let rows = tridiagonal_eigen_rows(&diag, &off, &[0, n - 1]).expect("QL converges");
        assert_eq!(rows.values, tri.values);
        for i in 0..n {
            assert_eq!(rows.rows[0][i], tri.vectors[i][0]);
            assert_eq!(rows.rows[1][i], tri.vectors[i][n - 1]);
        }
        // The squared first components sum to 1 (they are a row of an orthogonal matrix).
        let w: f64 = rows.rows[0].iter().map(|x| x * x).sum();
        assert!((w - 1.0).abs() < 1e-13);
    }

    #[test]
    fn tridiagonal_edge_cases() {
        let one = tridiagonal_eigen(&[3.0], &[]).expect("1x1");
        assert_eq!(one.values, vec![3.0]);
        assert_eq!(one.vectors, vec![vec![1.0]]);
        assert!(tridiagonal_eigen(&[], &[])
            .expect("empty")
            .values
            .is_empty());
        assert!(tridiagonal_eigen(&[1.0, 2.0], &[]).is_err());
        assert!(tridiagonal_eigen(&[1.0, f64::INFINITY], &[1.0]).is_err());
        assert!(tridiagonal_eigen_rows(&[1.0, 2.0], &[1.0], &[2]).is_err());
        // Zero matrix: already diagonal.
        let z = tridiagonal_eigen(&[0.0; 4], &[0.0; 3]).expect("zero");
        assert_eq!(z.values, vec![0.0; 4]);
    }
}
