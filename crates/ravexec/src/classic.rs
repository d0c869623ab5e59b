//! Group F, classic machine learning: fit ops return a [`FittedModel`] (its parameters, never
//! a pickle), and `predict`/`score` use one.
//!
//! Linear regression, logistic regression and k-means are fitted by the linfa family
//! (linfa-linear's least squares; linfa-logistic's multinomial L-BFGS with scikit-learn's
//! default penalty; linfa-clustering's k-means++ with ten seeded runs, as scikit-learn's
//! defaults); linfa works on ndarray 0.16, so arrays are converted at this boundary. k-NN and
//! Gaussian naive Bayes are written here: their fitted state is the training set or four small
//! tables, and linfa's fitted types do not expose the parameters a model value must carry.
//! Trees and forests are in [`crate::trees`] (linfa-trees has neither regression nor forests),
//! SVMs in [`crate::svm`] (libsvm's solver; linfa-svm keeps its fitted machine private).
//!
//! Everything computes in `f64`; labels are numbers (class indices or any float labels).

use crate::error::{ErrorKind, KResult};
use crate::svm;
use crate::tensor::Tensor;
use crate::trees::{self, Growth, Targets};
use linfa::traits::Fit;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Ix1, Ix2};
use ndarray016 as nd16;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use ravproto::model::{FittedModel, SvmKernelModel, SvmMachine, Tree};
use ravproto::ops::{Criterion, KMeansParams, KnnParams, SvmParams, TreeParams};
use ravproto::{OpKind, TensorData};

fn matrix(t: &Tensor, what: &str) -> KResult<Array2<f64>> {
    let a = t.to_f64_array();
    match a.ndim() {
        1 => Ok(a.into_dimensionality::<Ix1>().expect("1-D").insert_axis(Axis(1))),
        2 => Ok(a.into_dimensionality::<Ix2>().expect("2-D")),
        _ => Err(ErrorKind::Shape(format!("{what} must be (samples, features), got shape {:?}", a.shape()))),
    }
}

fn vector(t: &Tensor, rows: usize, what: &str) -> KResult<Array1<f64>> {
    let a = t.to_f64_array();
    let flat = match a.shape() {
        [n] | [n, 1] if *n == rows => a.into_shape_with_order(rows).map_err(|e| ErrorKind::Shape(e.to_string()))?,
        shape => {
            return Err(ErrorKind::Shape(format!(
                "{what} must hold one value per sample ({rows}), got shape {shape:?}"
            )));
        }
    };
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(ErrorKind::Value(format!("{what} holds a NaN or infinite value")));
    }
    Ok(flat)
}

fn check_finite(x: &Array2<f64>) -> KResult<()> {
    if x.is_empty() {
        return Err(ErrorKind::Value("X has no samples".into()));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ErrorKind::Value("X holds a NaN or infinite value".into()));
    }
    Ok(())
}

fn data(a: ndarray::ArrayViewD<'_, f64>) -> TensorData {
    Tensor::F64(a.to_owned()).to_data()
}

fn to16(x: &Array2<f64>) -> nd16::Array2<f64> {
    nd16::Array2::from_shape_vec(x.dim(), x.iter().copied().collect()).expect("same element count")
}

fn from16(x: &nd16::Array2<f64>) -> Array2<f64> {
    Array2::from_shape_vec(x.dim(), x.iter().copied().collect()).expect("same element count")
}

/// A group F fit op with its params: what [`fit`] fits.
#[derive(Clone, Copy, Debug)]
pub enum Estimator<'a> {
    /// `linear_regression`.
    LinearRegression,
    /// `logistic_regression`.
    LogisticRegression,
    /// `knn_classifier` or `knn_regressor`.
    Knn(&'a KnnParams),
    /// `naive_bayes`.
    NaiveBayes,
    /// `kmeans`.
    Kmeans(&'a KMeansParams),
    /// `svm_svc`.
    Svc(&'a SvmParams),
    /// `svm_svr`.
    Svr(&'a SvmParams),
    /// A decision tree or random forest, classifier or regressor.
    Trees(&'a TreeParams),
}

fn machine_value(m: svm::Machine) -> SvmMachine {
    SvmMachine { support: data(m.support.into_dyn().view()), coef: data(m.coef.into_dyn().view()), rho: m.rho }
}

/// Fits `estimator` (the op `kind`) on `x` and, except for k-means, targets `y`.
pub fn fit(kind: OpKind, estimator: Estimator<'_>, x: &Tensor, y: Option<&Tensor>) -> KResult<FittedModel> {
    let x = matrix(x, "X")?;
    check_finite(&x)?;
    let targets = |y: Option<&Tensor>| vector(y.ok_or(ErrorKind::NotTensor(1))?, x.nrows(), "y");
    match estimator {
        Estimator::LinearRegression => linear_regression(&x, &targets(y)?),
        Estimator::Knn(p) => knn(kind, p, &x, targets(y)?),
        Estimator::NaiveBayes => gaussian_nb(&x, &targets(y)?),
        Estimator::Kmeans(p) => kmeans(p, &x),
        Estimator::LogisticRegression => logistic_regression(&x, &targets(y)?),
        Estimator::Trees(p) => trees_fit(kind, p, &x, &targets(y)?),
        Estimator::Svc(p) => svc(p, &x, &targets(y)?),
        Estimator::Svr(p) => {
            let kernel = svm::kernel_for(p.kernel, &x);
            let m = svm::fit_svr(&kernel, &x, &targets(y)?)?;
            Ok(FittedModel::SvmSvr { kernel, machine: machine_value(m) })
        }
    }
}

fn svc(p: &SvmParams, x: &Array2<f64>, y: &Array1<f64>) -> KResult<FittedModel> {
    let classes = classes(y);
    if classes.len() < 2 {
        return Err(ErrorKind::Value("an SVM classifier needs at least two classes in y".into()));
    }
    let kernel = svm::kernel_for(p.kernel, x);
    let machines = svm::fit_svc(&kernel, x, &class_indices(&classes, y), classes.len())?;
    Ok(FittedModel::SvmSvc { classes, kernel, machines: machines.into_iter().map(machine_value).collect() })
}

/// A machine's decisions on `x`, after checking its arrays agree.
fn machine_decision(kernel: &SvmKernelModel, m: &SvmMachine, x: &Array2<f64>) -> KResult<Array1<f64>> {
    let (support, coef) = (model_matrix(&m.support, "support vectors")?, model_vector(&m.coef));
    if support.nrows() != coef.len() || (support.nrows() > 0 && support.ncols() != x.ncols()) {
        return Err(ErrorKind::Shape(format!(
            "the SVM has {} support vectors of {} features and {} coefficients; X has {} features",
            support.nrows(),
            support.ncols(),
            coef.len(),
            x.ncols()
        )));
    }
    Ok(svm::decision(kernel, &support, &coef, m.rho, x))
}

/// Each label's index in `classes`.
fn class_indices(classes: &[f64], y: &Array1<f64>) -> Vec<usize> {
    y.iter().map(|v| classes.binary_search_by(|c| c.total_cmp(v)).expect("labels come from y")).collect()
}

fn logistic_regression(x: &Array2<f64>, y: &Array1<f64>) -> KResult<FittedModel> {
    let classes = classes(y);
    if classes.len() < 2 {
        return Err(ErrorKind::Value("logistic regression needs at least two classes in y".into()));
    }
    let indices = nd16::Array1::from_vec(class_indices(&classes, y));
    // scikit-learn's default penalty, C = 1: linfa's objective is the summed log loss plus
    // alpha/2 |w|², the same function for alpha = 1/C.
    let fitted = linfa_logistic::MultiLogisticRegression::default()
        .alpha(1.0)
        .max_iterations(100)
        .fit(&linfa::Dataset::new(to16(x), indices))
        .map_err(|e| ErrorKind::Value(format!("logistic regression: {e}")))?;
    let (params, intercepts) = (fitted.params(), fitted.intercept());
    let mut coef = Array2::zeros((x.ncols(), classes.len()));
    let mut intercept = Array1::zeros(classes.len());
    // linfa orders its columns by its own class list: put each under its label's index.
    for (column, class) in fitted.classes().iter().enumerate() {
        for row in 0..x.ncols() {
            coef[[row, *class]] = params[[row, column]];
        }
        intercept[*class] = intercepts[column];
    }
    Ok(FittedModel::LogisticRegression {
        classes,
        coef: data(coef.into_dyn().view()),
        intercept: data(intercept.into_dyn().view()),
    })
}

fn tree_value(nodes: &trees::Nodes, outputs: usize) -> Tree {
    let n = nodes.feature.len();
    let children: Vec<i64> = nodes.children.iter().flatten().copied().collect();
    Tree {
        feature: TensorData::from_i64(vec![n], &nodes.feature).expect("one per node"),
        threshold: TensorData::from_f64(vec![n], &nodes.threshold).expect("one per node"),
        children: TensorData::from_i64(vec![n, 2], &children).expect("two per node"),
        value: TensorData::from_f64(vec![n, outputs], &nodes.value).expect("outputs per node"),
    }
}

fn trees_fit(kind: OpKind, p: &TreeParams, x: &Array2<f64>, y: &Array1<f64>) -> KResult<FittedModel> {
    let classify = matches!(kind, OpKind::DecisionTreeClassifier | OpKind::RandomForestClassifier);
    let forest = matches!(kind, OpKind::RandomForestClassifier | OpKind::RandomForestRegressor);
    let criterion = match (p.criterion, classify) {
        (None, true) => Criterion::Gini,
        (None, false) => Criterion::SquaredError,
        (Some(Criterion::SquaredError), true) | (Some(Criterion::Gini | Criterion::Entropy), false) => {
            return Err(ErrorKind::Value(format!("criterion {:?} does not fit `{kind}`", p.criterion)));
        }
        (Some(c), _) => c,
    };
    if forest && p.n_estimators == 0 {
        return Err(ErrorKind::Value("n_estimators must be at least 1".into()));
    }
    let features = x.ncols();
    // scikit-learn's defaults: every feature for a tree and a regression forest, the square
    // root of their number for a classification forest.
    let max_features = if forest && classify { ((features as f64).sqrt().floor() as usize).max(1) } else { features };
    let growth = Growth { criterion, max_depth: p.max_depth, min_samples_split: p.min_samples_split, max_features };
    let classes = classes(y);
    let indices = class_indices(&classes, y);
    let values = y.to_vec();
    let targets =
        if classify { Targets::Classes { y: &indices, classes: classes.len() } } else { Targets::Values(&values) };
    let outputs = if classify { classes.len() } else { 1 };
    if forest {
        let trees: Vec<Tree> = trees::forest(x.view(), &targets, p.n_estimators, &growth, p.random_state)
            .iter()
            .map(|nodes| tree_value(nodes, outputs))
            .collect();
        return Ok(if classify {
            FittedModel::RandomForestClassifier { classes, trees }
        } else {
            FittedModel::RandomForestRegressor { trees }
        });
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(p.random_state);
    let tree = tree_value(&trees::grow(x.view(), &targets, (0..x.nrows()).collect(), &growth, &mut rng), outputs);
    Ok(if classify {
        FittedModel::DecisionTreeClassifier { classes, tree }
    } else {
        FittedModel::DecisionTreeRegressor { tree }
    })
}

/// A tree's arrays, checked against each other; `outputs` values per node.
struct TreeArrays {
    feature: Vec<i64>,
    threshold: Vec<f64>,
    children: Vec<i64>,
    value: Vec<f64>,
    outputs: usize,
}

impl TreeArrays {
    fn read(tree: &Tree, features: usize) -> KResult<TreeArrays> {
        let bad = |why: &str| ErrorKind::Value(format!("the model's tree is malformed: {why}"));
        let feature = tree.feature.to_i64().ok_or_else(|| bad("feature is not i64"))?;
        let threshold = tree.threshold.to_f64().ok_or_else(|| bad("threshold is not f64"))?;
        let children = tree.children.to_i64().ok_or_else(|| bad("children is not i64"))?;
        let value = tree.value.to_f64().ok_or_else(|| bad("value is not f64"))?;
        let n = feature.len();
        if n == 0 || threshold.len() != n || children.len() != 2 * n || value.len() % n != 0 {
            return Err(bad("its arrays disagree on the node count"));
        }
        if feature.iter().any(|&f| f >= features as i64) || children.iter().any(|&c| c >= n as i64) {
            return Err(bad("a node names a feature or child that does not exist"));
        }
        Ok(TreeArrays { feature, threshold, children, outputs: value.len() / n, value })
    }

    fn leaf(&self, row: ArrayView1<'_, f64>) -> KResult<Array1<f64>> {
        trees::leaf_value(&self.feature, &self.threshold, &self.children, &self.value, self.outputs, row)
            .map(|v| Array1::from_vec(v.to_vec()))
            .ok_or_else(|| ErrorKind::Value("the model's tree is malformed: a path does not end in a leaf".into()))
    }
}

/// The trees' averaged leaf values for each row.
fn average_leaves(trees: &[&Tree], x: &Array2<f64>) -> KResult<Vec<Array1<f64>>> {
    let arrays: Vec<TreeArrays> = trees.iter().map(|t| TreeArrays::read(t, x.ncols())).collect::<KResult<_>>()?;
    x.rows()
        .into_iter()
        .map(|row| {
            let mut sum: Option<Array1<f64>> = None;
            for tree in &arrays {
                let leaf = tree.leaf(row)?;
                sum = Some(match sum {
                    Some(s) if s.len() == leaf.len() => s + leaf,
                    Some(_) => return Err(ErrorKind::Value("the model's trees disagree on their outputs".into())),
                    None => leaf,
                });
            }
            Ok(sum.map(|s| s / arrays.len() as f64).unwrap_or_default())
        })
        .collect()
}

fn linear_regression(x: &Array2<f64>, y: &Array1<f64>) -> KResult<FittedModel> {
    let records = to16(x);
    let targets = nd16::Array1::from_vec(y.to_vec());
    let fitted = linfa_linear::LinearRegression::new()
        .fit(&linfa::Dataset::new(records, targets))
        .map_err(|e| ErrorKind::Value(format!("linear regression: {e}")))?;
    let coef = Array1::from_vec(fitted.params().to_vec());
    Ok(FittedModel::LinearRegression { coef: data(coef.into_dyn().view()), intercept: fitted.intercept() })
}

fn knn(kind: OpKind, p: &KnnParams, x: &Array2<f64>, y: Array1<f64>) -> KResult<FittedModel> {
    if p.k == 0 || p.k > x.nrows() {
        return Err(ErrorKind::Value(format!("k = {} needs 1 ≤ k ≤ {} (the samples)", p.k, x.nrows())));
    }
    let (x, y) = (data(x.view().into_dyn()), data(y.view().into_dyn()));
    Ok(if kind == OpKind::KnnClassifier {
        FittedModel::KnnClassifier { k: p.k, x, y }
    } else {
        FittedModel::KnnRegressor { k: p.k, x, y }
    })
}

/// The class labels of `y`, ascending.
fn classes(y: &Array1<f64>) -> Vec<f64> {
    let mut classes = y.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    classes
}

fn gaussian_nb(x: &Array2<f64>, y: &Array1<f64>) -> KResult<FittedModel> {
    let classes = classes(y);
    let (c, f) = (classes.len(), x.ncols());
    // scikit-learn's smoothing: a fraction of the largest feature variance.
    let epsilon = 1e-9 * x.var_axis(Axis(0), 0.0).iter().copied().fold(0.0, f64::max);
    let mut theta = Array2::zeros((c, f));
    let mut var = Array2::zeros((c, f));
    let mut priors = Array1::zeros(c);
    for (i, class) in classes.iter().enumerate() {
        let rows: Vec<usize> = (0..x.nrows()).filter(|&r| y[r] == *class).collect();
        let members = x.select(Axis(0), &rows);
        theta.row_mut(i).assign(&members.mean_axis(Axis(0)).expect("a class has members"));
        var.row_mut(i).assign(&(members.var_axis(Axis(0), 0.0) + epsilon));
        priors[i] = rows.len() as f64 / x.nrows() as f64;
    }
    Ok(FittedModel::GaussianNb {
        classes,
        priors: data(priors.into_dyn().view()),
        theta: data(theta.into_dyn().view()),
        var: data(var.into_dyn().view()),
    })
}

fn kmeans(p: &KMeansParams, x: &Array2<f64>) -> KResult<FittedModel> {
    if p.n_clusters == 0 || p.n_clusters > x.nrows() {
        return Err(ErrorKind::Value(format!(
            "n_clusters = {} needs 1 ≤ n_clusters ≤ {} (the samples)",
            p.n_clusters,
            x.nrows()
        )));
    }
    let rng = Xoshiro256Plus::seed_from_u64(p.random_state);
    let fitted = linfa_clustering::KMeans::params_with_rng(p.n_clusters, rng)
        .n_runs(10)
        .max_n_iterations(300)
        .tolerance(1e-4)
        .fit(&linfa::DatasetBase::from(to16(x)))
        .map_err(|e| ErrorKind::Value(format!("kmeans: {e}")))?;
    let centroids = from16(fitted.centroids());
    let inertia = nearest(x.view(), centroids.view()).iter().map(|(_, d)| d).sum();
    Ok(FittedModel::Kmeans { centroids: data(centroids.into_dyn().view()), inertia })
}

/// For each row of `x`, the nearest row of `centres` and the squared distance to it.
fn nearest(x: ArrayView2<'_, f64>, centres: ArrayView2<'_, f64>) -> Vec<(usize, f64)> {
    x.rows()
        .into_iter()
        .map(|row| {
            centres
                .rows()
                .into_iter()
                .map(|c| (&row - &c).mapv(|d| d * d).sum())
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .expect("at least one centre")
        })
        .collect()
}

/// A fitted model as the value of its fit op.
pub fn model_tensor(model: &FittedModel) -> Tensor {
    match model.to_value() {
        ravproto::Value::Tensor(data) => Tensor::from_data(&data),
        ravproto::Value::List(_) => unreachable!("a model encodes as one tensor"),
    }
}

/// The fitted model a fit op returned.
pub fn read_model(t: &Tensor) -> KResult<FittedModel> {
    FittedModel::from_value(&ravproto::Value::Tensor(t.to_data()))
        .map_err(|e| ErrorKind::Value(format!("input 0 is not a fitted model: {e}")))
}

fn model_matrix(t: &TensorData, what: &str) -> KResult<Array2<f64>> {
    matrix(&Tensor::from_data(t), what)
}

fn model_vector(t: &TensorData) -> Array1<f64> {
    Array1::from_iter(Tensor::from_data(t).to_f64_array().iter().copied())
}

/// The `k` nearest training rows of `row` (ties: the earlier sample).
fn neighbours(train: ArrayView2<'_, f64>, row: ArrayView1<'_, f64>, k: usize) -> Vec<usize> {
    let mut distances: Vec<(f64, usize)> =
        train.rows().into_iter().map(|t| (&t - &row).mapv(|d| d * d).sum()).zip(0..).collect();
    distances.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    distances.into_iter().take(k).map(|(_, i)| i).collect()
}

/// Predictions of `model` for the rows of `x`.
pub fn predict(model: &FittedModel, x: &Tensor) -> KResult<Array1<f64>> {
    let x = matrix(x, "X")?;
    check_finite(&x)?;
    let features = |expected: usize| {
        if x.ncols() == expected {
            Ok(())
        } else {
            Err(ErrorKind::Shape(format!(
                "the {} model was fitted on {expected} features, X has {}",
                model.name(),
                x.ncols()
            )))
        }
    };
    Ok(match model {
        FittedModel::LinearRegression { coef, intercept } => {
            let coef = model_vector(coef);
            features(coef.len())?;
            x.dot(&coef) + *intercept
        }
        FittedModel::KnnClassifier { k, x: train, y } | FittedModel::KnnRegressor { k, x: train, y } => {
            let (train, y) = (model_matrix(train, "model samples")?, model_vector(y));
            features(train.ncols())?;
            let vote = matches!(model, FittedModel::KnnClassifier { .. });
            Array1::from_iter(x.rows().into_iter().map(|row| {
                let near: Vec<f64> = neighbours(train.view(), row, *k).into_iter().map(|i| y[i]).collect();
                if vote {
                    // The most frequent label; ties go to the smallest, as scikit-learn's mode.
                    let labels = classes(&Array1::from_vec(near.clone()));
                    let count = |l: f64| near.iter().filter(|&&v| v == l).count();
                    labels.into_iter().max_by(|a, b| count(*a).cmp(&count(*b)).then(b.total_cmp(a))).unwrap_or(0.0)
                } else {
                    near.iter().sum::<f64>() / near.len() as f64
                }
            }))
        }
        FittedModel::GaussianNb { classes, priors, theta, var } => {
            let (priors, theta, var) = (model_vector(priors), model_matrix(theta, "theta")?, model_matrix(var, "var")?);
            features(theta.ncols())?;
            Array1::from_iter(x.rows().into_iter().map(|row| {
                let log_likelihood = |c: usize| {
                    let (mean, var) = (theta.row(c), var.row(c));
                    let mut sum = priors[c].ln();
                    for j in 0..row.len() {
                        sum -= 0.5 * (2.0 * std::f64::consts::PI * var[j]).ln();
                        sum -= (row[j] - mean[j]).powi(2) / (2.0 * var[j]);
                    }
                    sum
                };
                let best = (0..classes.len())
                    .map(|c| (c, log_likelihood(c)))
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map_or(0, |(c, _)| c);
                classes.get(best).copied().unwrap_or(0.0)
            }))
        }
        FittedModel::Kmeans { centroids, .. } => {
            let centroids = model_matrix(centroids, "centroids")?;
            features(centroids.ncols())?;
            Array1::from_iter(nearest(x.view(), centroids.view()).into_iter().map(|(c, _)| c as f64))
        }
        FittedModel::LogisticRegression { classes, coef, intercept } => {
            let (coef, intercept) = (model_matrix(coef, "coef")?, model_vector(intercept));
            features(coef.nrows())?;
            if coef.ncols() != classes.len() || intercept.len() != classes.len() {
                return Err(ErrorKind::Value("the logistic model's arrays disagree on the classes".into()));
            }
            let scores: Vec<Array1<f64>> =
                (x.dot(&coef) + &intercept).rows().into_iter().map(|r| r.to_owned()).collect();
            Array1::from_iter(trees::argmax_rows(&scores).into_iter().map(|c| classes[c]))
        }
        FittedModel::SvmSvc { classes, kernel, machines } => {
            let pairs = classes.len() * classes.len().saturating_sub(1) / 2;
            if machines.len() != pairs {
                return Err(ErrorKind::Value(format!(
                    "an SVM classifier of {} classes has {pairs} machines, this one {}",
                    classes.len(),
                    machines.len()
                )));
            }
            let mut votes = Array2::<f64>::zeros((x.nrows(), classes.len()));
            let mut machine = machines.iter();
            for a in 0..classes.len() {
                for b in a + 1..classes.len() {
                    let decisions = machine_decision(kernel, machine.next().expect("counted above"), &x)?;
                    for (row, d) in decisions.iter().enumerate() {
                        votes[[row, if *d > 0.0 { a } else { b }]] += 1.0;
                    }
                }
            }
            let votes: Vec<Array1<f64>> = votes.rows().into_iter().map(|r| r.to_owned()).collect();
            Array1::from_iter(trees::argmax_rows(&votes).into_iter().map(|c| classes[c]))
        }
        FittedModel::SvmSvr { kernel, machine } => machine_decision(kernel, machine, &x)?,
        FittedModel::DecisionTreeClassifier { classes, tree } => {
            let p = average_leaves(&[tree], &x)?;
            Array1::from_iter(trees::argmax_rows(&p).into_iter().map(|c| classes.get(c).copied().unwrap_or(f64::NAN)))
        }
        FittedModel::RandomForestClassifier { classes, trees: forest } => {
            let p = average_leaves(&forest.iter().collect::<Vec<_>>(), &x)?;
            Array1::from_iter(trees::argmax_rows(&p).into_iter().map(|c| classes.get(c).copied().unwrap_or(f64::NAN)))
        }
        FittedModel::DecisionTreeRegressor { tree } => {
            Array1::from_iter(average_leaves(&[tree], &x)?.iter().map(|v| v.first().copied().unwrap_or(f64::NAN)))
        }
        FittedModel::RandomForestRegressor { trees: forest } => Array1::from_iter(
            average_leaves(&forest.iter().collect::<Vec<_>>(), &x)?
                .iter()
                .map(|v| v.first().copied().unwrap_or(f64::NAN)),
        ),
    })
}

/// scikit-learn's `score`: accuracy (classifiers), R² (regressors), minus the inertia of `x`
/// (k-means, which ignores `y`).
pub fn score(model: &FittedModel, x: &Tensor, y: &Tensor) -> KResult<f64> {
    let predicted = predict(model, x)?;
    if let FittedModel::Kmeans { centroids, .. } = model {
        let centroids = model_matrix(centroids, "centroids")?;
        let x = matrix(x, "X")?;
        return Ok(-nearest(x.view(), centroids.view()).iter().map(|(_, d)| d).sum::<f64>());
    }
    let y = vector(y, predicted.len(), "y")?;
    Ok(match model {
        FittedModel::KnnClassifier { .. }
        | FittedModel::GaussianNb { .. }
        | FittedModel::LogisticRegression { .. }
        | FittedModel::DecisionTreeClassifier { .. }
        | FittedModel::RandomForestClassifier { .. }
        | FittedModel::SvmSvc { .. } => {
            y.iter().zip(&predicted).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
        }
        // k-means returned above; its arm only keeps this match exhaustive.
        FittedModel::LinearRegression { .. }
        | FittedModel::KnnRegressor { .. }
        | FittedModel::DecisionTreeRegressor { .. }
        | FittedModel::RandomForestRegressor { .. }
        | FittedModel::SvmSvr { .. }
        | FittedModel::Kmeans { .. } => {
            let mean = y.mean().unwrap_or(0.0);
            let residual: f64 = y.iter().zip(&predicted).map(|(a, b)| (a - b).powi(2)).sum();
            let total: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
            if total == 0.0 { if residual == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - residual / total }
        }
    })
}
